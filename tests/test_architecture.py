"""The layering: importing the core loads no heavy library (they are imported inside functions) and
no GUI toolkit. `lint-imports` (pyproject's [tool.importlinter]) checks the static import graph."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "open3d", "moderngl", "av", "cv2", "pxr", "ray", "PySide6", "bpy")

SCRIPT = """
import importlib, json, pkgutil, sys
import depthstudio
names = ["depthstudio"]
for info in pkgutil.walk_packages(depthstudio.__path__, "depthstudio."):
    if info.name.startswith("depthstudio.app") or info.name == "depthstudio.__main__":
        continue
    names.append(info.name)
    importlib.import_module(info.name)
print(json.dumps({"modules": names, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
"""


def test_importing_the_core_loads_no_heavy_library():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", SCRIPT % (HEAVY,)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["modules"]) > 30  # every core module was imported
    assert result["loaded"] == []


def test_the_cli_parser_loads_no_heavy_library():
    """Building every command's parser (what `depthstudio --help` does) stays light."""
    code = ("import sys, json\nfrom depthstudio.cli import build_parser\nbuild_parser()\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.skipif(not (REPO / "pyproject.toml").exists(), reason="needs the source tree")
def test_import_contracts():
    lint_imports = pytest.importorskip("importlinter")
    del lint_imports
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())"], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
