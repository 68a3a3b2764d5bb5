"""Build the installable Blender extension zip(s) of DepthStudio.

    python scripts/build_blender_extension.py                  # this machine's platform -> dist/
    python scripts/build_blender_extension.py --all-platforms  # linux-x64, windows-x64, macos-arm64, macos-x64
    python scripts/build_blender_extension.py --no-wheels      # the add-on alone, for development (below)

Each zip holds plugins/blender (without its tests) plus, in ``wheels/``, the wheels that Blender's
Python lacks for the DepthStudio core with ONNX Runtime: a wheel of this repository (built here),
onnxruntime, pillow, pillow-heif (phone photos), fast-simplification, trimesh (exports), tqdm, huggingface_hub
and their dependencies, downloaded with pip for CPython 3.11 (Blender 4.2-5.0) and the target platform.
Packages Blender ships (numpy, requests and friends) are left out. The manifest in the zip lists the wheels and the platform, as
Blender's own ``blender --command extension build --split-platforms`` would; install the zip with
Edit > Preferences > Get Extensions > Install from Disk.

Even when depth comes from the external ``depthstudio`` executable, the mesh, UVs and camera come
from the core inside Blender, so a user's zip always bundles the core and pillow; ``--no-wheels``
is for developers whose Blender Python already imports this repository.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "plugins" / "blender"
PYTHON_VERSION = "3.11"  # Blender 4.2 to 5.0 embed CPython 3.11

#: Blender platform -> pip platform tags (newest first; pip accepts any of them).
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
    "macos-x64": ["macosx_13_0_x86_64", "macosx_12_0_x86_64", "macosx_11_0_x86_64", "macosx_10_15_x86_64",
                  "macosx_10_9_x86_64"],
}
#: What the in-Blender core needs (numpy < 2: Blender's own numpy is 1.26 in 4.2-5.0).
REQUIREMENTS = ["onnxruntime>=1.17", "pillow>=10", "pillow-heif>=0.16", "fast-simplification>=0.1.7", "tqdm>=4.60",
                "trimesh>=4.0",  # the export (Export To) writes OBJ, PLY and GLB through the core's trimesh writers
                "huggingface_hub>=0.23", "numpy>=1.26,<2"]
#: Shipped with Blender's Python already, or never imported on the add-on's path (sympy: ORT's tools).
EXCLUDE = {"numpy", "requests", "certifi", "idna", "urllib3", "charset-normalizer", "zstandard", "cython",
           "sympy", "mpmath"}
PATHS_EXCLUDED = ("tests", "__pycache__", "wheels", "*.pyc", ".*")


def current_platform() -> str:
    machine = os.uname().machine if hasattr(os, "uname") else os.environ.get("PROCESSOR_ARCHITECTURE", "")
    arm = machine.lower() in ("arm64", "aarch64")
    if sys.platform.startswith("linux"):
        return "linux-arm64" if arm else "linux-x64"
    if sys.platform == "darwin":
        return "macos-arm64" if arm else "macos-x64"
    return "windows-arm64" if arm else "windows-x64"


def manifest_version() -> str:
    text = (ADDON / "blender_manifest.toml").read_text(encoding="utf-8")
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"build_blender_extension: command failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def project_name(wheel: Path) -> str:
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def core_wheel(cache: Path) -> Path:
    """A wheel of this repository (pure Python, no dependencies recorded as needing install)."""
    out = cache / "core"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)]
    try:  # setuptools of this environment: no network, no throw-away build environment
        importlib.import_module("setuptools")

        run(cmd + ["--no-build-isolation"])
    except (ImportError, SystemExit):
        run(cmd)
    (wheel,) = out.glob("depthstudio-*.whl")
    return wheel


def platform_wheels(platform: str, cache: Path, refresh: bool = False) -> list[Path]:
    folder = cache / platform
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / ".requirements"
    wanted_stamp = "\n".join([PYTHON_VERSION, *PLATFORMS[platform], *REQUIREMENTS])
    if refresh or not stamp.is_file() or stamp.read_text() != wanted_stamp:
        download_wheels(platform, folder)
        stamp.write_text(wanted_stamp)
    wanted = {}
    for wheel in sorted(folder.glob("*.whl")):
        name = project_name(wheel)
        if name not in EXCLUDE:
            wanted[name] = wheel
    return sorted(wanted.values())


def download_wheels(platform: str, folder: Path) -> None:
    for old in folder.glob("*.whl"):  # one version per package: what this resolution picks
        old.unlink()
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", str(folder),
           "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp311", "--abi", "abi3",
           "--abi", "none"]
    for tag in PLATFORMS[platform]:
        cmd += ["--platform", tag]
    run(cmd + ["--platform", "any", *REQUIREMENTS])


def stage_manifest(text: str, wheels: list[str], platform: str | None) -> str:
    lines = []
    if wheels:
        lines.append("wheels = [\n" + "".join(f'  "./wheels/{w}",\n' for w in wheels) + "]")
    if platform:
        lines.append(f'platforms = ["{platform}"]')
    block = "\n".join(lines) + "\n"
    marker = "# wheels = []\n"
    if marker not in text:
        sys.exit("build_blender_extension: blender_manifest.toml lost its '# wheels = []' marker line")
    return text.replace(marker, block)


def build_zip(out_dir: Path, platform: str | None, wheels: list[Path]) -> Path:
    version = manifest_version()
    name = f"depthstudio-{version}" + (f"-{platform.replace('-', '_')}" if platform else "") + ".zip"
    target = out_dir / name
    manifest = stage_manifest((ADDON / "blender_manifest.toml").read_text(encoding="utf-8"),
                              [w.name for w in wheels], platform)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(ADDON.rglob("*")):
                rel = path.relative_to(ADDON)
                if path.is_dir() or any(rel.match(p) or p.strip("*") in rel.parts for p in PATHS_EXCLUDED) \
                        or any(part.startswith(".") for part in rel.parts):
                    continue
                if rel.as_posix() == "blender_manifest.toml":
                    zf.writestr("blender_manifest.toml", manifest)
                else:
                    zf.write(path, rel.as_posix())
            for wheel in wheels:
                zf.write(wheel, f"wheels/{wheel.name}", compress_type=zipfile.ZIP_STORED)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; a release zip is for everyone
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=str(REPO / "dist"), help="folder for the zip(s) (default dist/)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                       help="Blender platform to build for (repeatable; default: this machine's)")
    group.add_argument("--all-platforms", action="store_true", help="one zip per supported platform")
    group.add_argument("--no-wheels", action="store_true",
                       help="the add-on alone, for development: the DepthStudio core (numpy, pillow) must "
                            "already be importable in Blender's Python")
    parser.add_argument("--cache", default=str(REPO / ".whl" / "blender"), help="wheel download cache")
    parser.add_argument("--refresh", action="store_true", help="download the wheels again (newer versions)")
    args = parser.parse_args(argv)
    out_dir = Path(args.output)
    if args.no_wheels:
        print(build_zip(out_dir, None, []))
        return 0
    platforms = sorted(PLATFORMS) if args.all_platforms else (args.platform or [current_platform()])
    for platform in platforms:
        if platform not in PLATFORMS:
            sys.exit(f"build_blender_extension: no wheels known for {platform}; use --no-wheels")
    cache = Path(args.cache)
    core = core_wheel(cache)
    for platform in platforms:
        print(build_zip(out_dir, platform, [core, *platform_wheels(platform, cache, args.refresh)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
