"""Where DepthStudio finds its bundled files."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository's top-level resources/ (icons, styles, the bundled sample scene).
RESOURCES_DIR = PACKAGE_DIR.parent / "resources"
