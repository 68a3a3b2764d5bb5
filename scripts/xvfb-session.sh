#!/usr/bin/env bash
# Run a command inside a virtual X server WITH a window manager (openbox), as a desktop session has:
#   xvfb-run -a -s "-screen 0 1920x1080x24" bash scripts/xvfb-session.sh python -m pytest tests/test_gui.py
# Qt's xcb platform then places, focuses and decorates windows as it does on a real desktop.
set -uo pipefail
wm_pid=""
if command -v openbox >/dev/null && [ -n "${DISPLAY:-}" ]; then
  openbox --sm-disable >/dev/null 2>&1 &
  wm_pid=$!
  for _ in $(seq 1 50); do  # wait until the window manager owns the screen (at most 5 s)
    xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q "window id" && break
    sleep 0.1
  done
fi
"$@"
status=$?
if [ -n "$wm_pid" ]; then kill "$wm_pid" 2>/dev/null; wait "$wm_pid" 2>/dev/null; fi
exit $status
