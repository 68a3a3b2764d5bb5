"""`depthstudio gui [IMAGE...]`: open the desktop app, optionally with photos."""
from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("gui", help="open the desktop app",
                       description="Open the DepthStudio window, optionally with photos or folders.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="photos, folders or .txt lists to open")
    p.set_defaults(func=run)


def run(args) -> int:
    from depthstudio.app import launch
    from depthstudio.errors import InputError

    missing = [p for p in args.images if not Path(p).exists()]
    if missing:
        raise InputError(f"{missing[0]}: file not found")
    return launch([str(p) for p in args.images])
