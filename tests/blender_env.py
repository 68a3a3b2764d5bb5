"""Run code in real Blender: the ``bpy`` wheel (Blender 5.0 as a Python module) in its own venv.

The ``bpy`` wheel pins numpy < 2, so it lives in a virtual environment of its own, created once per
machine and reused: ``<repo>/.venv-blender`` (git ignores ``.venv*/``), or the folder named by
``DEPTHSTUDIO_BLENDER_VENV``. Besides bpy it holds what the add-on's in-Blender core needs: this
project (editable, without torch) plus onnxruntime, pillow, huggingface_hub, tqdm, trimesh and
fast-simplification, all with numpy < 2.

    from tests.blender_env import blender_python, run_in_blender
    result = run_in_blender("import bpy; print(bpy.app.version_string)")
    assert result.returncode == 0, result.stderr

In pytest use the ``blender`` fixture pattern::

    @pytest.fixture(scope="session")
    def blender_py():
        return require_blender()      # skips only when bpy genuinely cannot be installed
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO / ".venv-blender"
BPY_SPEC = "bpy==5.0.*"
#: bpy 5.0 wheels exist for CPython 3.11 only.
BPY_PYTHON = (3, 11)
#: What the add-on's in-Blender core needs besides bpy (the project itself goes in --no-deps).
CORE_REQUIREMENTS = (
    "numpy>=1.26,<2",
    "onnxruntime>=1.17",
    "pillow>=10",
    "huggingface_hub>=0.23",
    "tqdm>=4.60",
    "trimesh>=4.0",
    "fast-simplification>=0.1.7",
)
_READY = ".depthstudio-ready"


class BlenderUnavailable(RuntimeError):
    """bpy cannot be installed here (no PyPI, no CPython 3.11): Blender tests skip."""


def venv_dir() -> Path:
    return Path(os.environ.get("DEPTHSTUDIO_BLENDER_VENV") or DEFAULT_VENV)


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _stamp() -> str:
    text = "\n".join((BPY_SPEC, *CORE_REQUIREMENTS, str(REPO)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _base_python() -> str:
    """A CPython 3.11 to build the venv from."""
    if sys.version_info[:2] == BPY_PYTHON:
        return sys.executable
    name = "python{}.{}".format(*BPY_PYTHON)
    found = shutil.which(name)
    if not found:
        raise BlenderUnavailable(f"the bpy wheel needs CPython {name[6:]}; none found on PATH")
    return found


@contextlib.contextmanager
def _lock(path: Path):
    """An exclusive lock so that parallel test sessions build the venv once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # Windows: no lock, builds are idempotent anyway
            pass
        yield


def _pip(python: Path, *args: str, timeout: float = 1800) -> None:
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BlenderUnavailable(f"pip timed out: {' '.join(args)}") from None
    if proc.returncode != 0:
        raise BlenderUnavailable(f"pip install {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def blender_python() -> Path:
    """The Python interpreter of the venv with bpy and the in-Blender core; created on first use."""
    venv = venv_dir()
    python = _venv_python(venv)
    ready = venv / _READY
    if python.exists() and ready.exists() and ready.read_text().strip() == _stamp():
        return python
    venv.mkdir(parents=True, exist_ok=True)  # `python -m venv` accepts an existing empty folder
    with _lock(venv / ".build.lock"):
        if python.exists() and ready.exists() and ready.read_text().strip() == _stamp():
            return python
        if not python.exists():
            proc = subprocess.run([_base_python(), "-m", "venv", str(venv)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise BlenderUnavailable(f"cannot create a venv at {venv}: {proc.stderr.strip()}")
        _pip(python, BPY_SPEC, *CORE_REQUIREMENTS)
        _pip(python, "--no-deps", "-e", str(REPO))
        check = subprocess.run(
            [str(python), "-c", "import bpy, numpy, onnxruntime, depthstudio; assert numpy.__version__ < '2'"],
            capture_output=True, text=True, timeout=300,
        )
        if check.returncode != 0:
            raise BlenderUnavailable(f"the Blender venv at {venv} does not work:\n{check.stderr[-3000:]}")
        ready.write_text(_stamp() + "\n")
    return python


def require_blender() -> Path:
    """blender_python() for tests: pytest.skip when bpy genuinely cannot be installed."""
    import pytest

    try:
        return blender_python()
    except BlenderUnavailable as exc:
        if os.environ.get("CI"):  # CI must run the Blender tests, not skip them quietly
            pytest.fail(f"real Blender is unavailable on CI: {exc}")
        pytest.skip(f"real Blender is unavailable: {exc}")


def run_in_blender(script_or_code, *args, timeout: float = 300, env: dict | None = None,
                   cwd=None, check: bool = False) -> subprocess.CompletedProcess:
    """Run a script file (a Path or a path to an existing .py) or a code string with bpy's Python.

    ``args`` go to the script as ``sys.argv[1:]``. Blender's own settings stay out of the user's
    home: BLENDER_USER_RESOURCES points to a fresh temporary folder unless ``env`` sets it.
    Returns the CompletedProcess (text stdout/stderr); ``check=True`` raises on a non-zero status.
    """
    python = blender_python()
    with tempfile.TemporaryDirectory(prefix="ds-blender-") as tmp:
        script = Path(script_or_code).resolve() if isinstance(script_or_code, os.PathLike) else None
        if script is None and isinstance(script_or_code, str) and script_or_code.endswith(".py") \
                and "\n" not in script_or_code and Path(script_or_code).is_file():
            script = Path(script_or_code).resolve()
        if script is None:
            script = Path(tmp) / "script.py"
            script.write_text(textwrap.dedent(str(script_or_code)), encoding="utf-8")
        run_env = dict(os.environ)
        run_env.setdefault("PYTHONUNBUFFERED", "1")
        run_env["BLENDER_USER_RESOURCES"] = str(Path(tmp) / "user")
        run_env.pop("PYTHONPATH", None)  # the caller's site must not leak into Blender's numpy<2 world
        run_env["PYTHONPATH"] = str(REPO)
        if env:
            run_env.update({k: str(v) for k, v in env.items()})
        proc = subprocess.run(
            [str(python), str(script), *map(str, args)],
            capture_output=True, text=True, timeout=timeout, env=run_env, cwd=cwd or tmp,
        )
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
    return proc


if __name__ == "__main__":  # `python tests/blender_env.py` builds the venv and prints Blender's version
    result = run_in_blender("import bpy, numpy; print('Blender', bpy.app.version_string, 'numpy', numpy.__version__)")
    print(result.stdout or result.stderr)
    sys.exit(result.returncode)
