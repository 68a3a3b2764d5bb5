#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
#   bash scripts/test.sh [pytest args...]
# - Debian packages for headless OpenGL (Mesa EGL/llvmpipe), a virtual screen (Xvfb) with a window manager
#   (openbox) and Qt's X11 libraries, when run as root;
# - torch as the CPU wheel FIRST (a bare `torch` requirement would pull gigabytes of CUDA packages);
# - the project with every extra (Ray included) and the test tools; the Ray cluster tests run a
#   loopback-only cluster in network namespaces (root, unshare/nsenter from util-linux, ip from iproute2);
# - the Blender tests create their own virtual environment with the bpy wheel (it pins numpy < 2).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

need_apt=()
# Qt's X11 (xcb) platform: libxcb-icccm4, libxcb-keysyms1, libxcb-cursor0, libxkbcommon-x11-0; a window manager
# (openbox) and x11-apps (xwd) + imagemagick for the GUI tests and screenshots under a real X server.
for pkg in iproute2 util-linux xvfb xauth x11-utils x11-apps openbox imagemagick libegl1 libgl1 libgl1-mesa-dri libegl-mesa0 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libdbus-1-3 libfontconfig1 libglib2.0-0 libusb-1.0-0; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "== missing Debian packages (GL/GUI tests will skip): ${need_apt[*]}" >&2
  fi
fi

if ! $PY -c "import torch" 2>/dev/null; then
  echo "== installing torch 2.13.0 (CPU)"
  $PY -m pip install -q torch==2.13.0
fi
echo "== installing depthstudio[all,test,test-gui]"
$PY -m pip install -q -e ".[all,test,test-gui]"

export HF_HUB_DISABLE_TELEMETRY=1

echo "== ruff check"
$PY -m ruff check .
echo "== import contracts (lint-imports)"
$PY -c "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
echo "== mypy (the core: everything but depthstudio/app)"
$PY -m mypy

# The core-only pass: a virtual environment with nothing but `pip install -e ".[test]"` (no torch,
# open3d, usd-core, OpenEXR, PySide6, moderngl, av, opencv): tests needing an extra must skip.
echo "== core-only test pass (.venv-core)"
if [ ! -x .venv-core/bin/python ]; then
  $PY -m venv .venv-core
fi
.venv-core/bin/python -m pip install -q -e ".[test]"
.venv-core/bin/python -m pytest -q -p no:cacheprovider -m "not slow and not blender" "$@"

echo "== running the tests"
if command -v xvfb-run >/dev/null; then
  # a real X server with a window manager: the GUI tests run on Qt's xcb platform (tests/conftest.py)
  exec xvfb-run -a -s "-screen 0 1920x1080x24" bash scripts/xvfb-session.sh $PY -m pytest "$@"
else
  exec $PY -m pytest "$@"
fi
