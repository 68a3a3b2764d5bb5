"""One module per `depthstudio` subcommand (see depthstudio/cli.py)."""
