import sys

from depthstudio.cli import main

sys.exit(main())
