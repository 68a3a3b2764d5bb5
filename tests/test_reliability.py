"""What DepthStudio promises on bad input, full or read-only disks, and interruption (docs/reliability.md).

- A write that fails (full disk, read-only folder) is one line naming the file and the reason, exit 1,
  no traceback, no temporary file; the rest of a batch goes on where it can.
- An input that cannot be read says why: not found, permission denied, symlink loop.
- SIGTERM/SIGINT stop a command at its next chunk, frame or item: exit 143/130, no temporary file,
  no half-written output. After SIGKILL, the next run of the same command removes the temporary files.

Full disks are a 200 KB tmpfs mounted by the test (root only, skipped otherwise); permission denied
is checked in a child process without the capabilities that let root read anything.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthstudio.depthmap import DepthMap
from depthstudio.errors import InputError, OutputError
from depthstudio.io.atomic import remove_stale_parts, write_bytes, write_text
from depthstudio.io.images import load_image, save_png

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# -- helpers -----------------------------------------------------------------------------------
def texture(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def disparity(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return (0.2 + 0.6 * x / w + 0.1 * np.sin(y / 7)).astype(np.float32)


def scene(folder: Path, n: int = 1, w: int = 64, h: int = 48) -> tuple[list[Path], Path]:
    """``n`` photos and a folder of their depth maps (same stems)."""
    photos, depths = folder / "photos", folder / "depth"
    photos.mkdir(parents=True, exist_ok=True)
    depths.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        path = photos / f"p{i:03d}.png"
        Image.fromarray(texture(w, h, i)).save(path)
        np.save(depths / f"p{i:03d}.npy", disparity(w, h))
        paths.append(path)
    return paths, depths


def parts(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if ".part" in p.name]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error" in line.lower()]


@contextlib.contextmanager
def _mount(folder: Path, options: str):
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KB file system (tmpfs) for full-disk tests."""
    if not IS_ROOT:
        pytest.skip("a full disk is a small tmpfs, and mounting one needs root")
    with _mount(tmp_path / "disk", "size=200k,mode=0755") as folder:
        yield folder


def fill(disk: Path, leave: int = 0) -> None:
    """Fill ``disk`` until about ``leave`` bytes are free."""
    free = shutil.disk_usage(disk).free
    size = max(0, free - leave)
    with open(disk / "filler.bin", "wb") as f:
        with contextlib.suppress(OSError):
            f.write(b"\0" * size)


def disk_files(disk: Path) -> list[str]:
    return sorted(p.name for p in disk.rglob("*") if p.is_file() and p.name != "filler.bin")


def unprivileged() -> list[str]:
    """A command prefix under which a mode-000 file cannot be read: root drops the capabilities that
    bypass file permissions (it keeps its uid, so the interpreter and the repository stay readable)."""
    if not IS_ROOT:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("permission-denied checks as root need setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return env


def cli(*args, prefix=(), cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "depthstudio", *map(str, args)], capture_output=True,
                          text=True, env=child_env(), cwd=cwd, timeout=timeout)


# -- full disk: every writer -------------------------------------------------------------------
def _writers():
    rgb = texture(120, 90)
    depth = DepthMap(disparity(120, 90), "disparity", "test")

    def exr(target):
        pytest.importorskip("OpenEXR")
        from depthstudio.io.depthfiles import write_exr

        write_exr(target, disparity(200, 150))

    def still(target):
        from depthstudio.commands.dof import _save_still

        _save_still(target, rgb)

    def video(target):
        pytest.importorskip("av")
        from depthstudio.video.writer import VideoWriter

        with VideoWriter(target, fps=10, size=(120, 90)) as writer:
            for i in range(30):
                writer.write(texture(120, 90, i))

    def mesh(target):
        pytest.importorskip("trimesh")
        from depthstudio.geometry.camera import CameraSettings
        from depthstudio.geometry.export import export
        from depthstudio.geometry.mesh import MeshSettings
        from depthstudio.geometry.pipeline import build_mesh
        from depthstudio.io.images import as_photo

        geometry, _, meta = build_mesh(as_photo(rgb), depth, CameraSettings(), None, MeshSettings())
        export(geometry, target.parent, target.stem, (target.suffix[1:],), meta)

    return {
        "x.png": lambda t: save_png(t, rgb),
        "x.npy": lambda t: depth.save_npy(t),
        "x.json": lambda t: write_text(t, "{}" * 100_000),
        "x.bin": lambda t: write_bytes(t, b"\1" * 300_000),
        "x.exr": exr,
        "x.jpg": still,
        "x.mp4": video,
        "x.ply": mesh,
        "x.obj": mesh,
        "x.glb": mesh,
    }


@pytest.mark.parametrize("name", list(_writers()))
def test_every_writer_on_a_full_disk_raises_one_line_and_leaves_nothing(small_disk, name):
    fill(small_disk, leave=0)
    target = small_disk / name
    with pytest.raises(OutputError) as info:
        _writers()[name](target)
    message = str(info.value)
    assert "\n" not in message
    assert target.stem in message and "no space left" in message.lower(), message
    assert disk_files(small_disk) == []  # neither the output nor its temporary file


def test_depth_batch_on_a_full_disk_goes_on_with_what_fits(small_disk, tmp_path, tiny_onnx):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(texture(400, 300)).save(folder / "a_big.png")  # its .npy alone is 480 KB
    Image.fromarray(texture(40, 30, 1)).save(folder / "b_small.png")
    done = cli("depth", folder, "-o", small_disk, "--model", tiny_onnx, "--input-size", "56")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "a_big" in lines[0] and "no space left" in lines[0].lower(), done.stderr
    assert {"b_small_depth.npy", "b_small_depth.png"} <= set(disk_files(small_disk))
    assert not [n for n in disk_files(small_disk) if n.startswith("a_big_depth")]
    assert not parts(small_disk)


def test_depth_exr_on_a_full_disk(small_disk, tmp_path, tiny_onnx):
    pytest.importorskip("OpenEXR")
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(texture(160, 120)).save(folder / "p.png")
    args = ["--model", tiny_onnx, "--input-size", "56", "--exr"]
    assert cli("depth", folder, "-o", tmp_path / "ok", *args).returncode == 0
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "ok").iterdir()}
    pages = sum(-(-size // 4096) * 4096 for name, size in sizes.items() if not name.endswith(".exr"))
    assert sizes["p_depth.exr"] > 12288
    fill(small_disk, leave=pages + 4096)  # the .npy and .png fit, the .exr does not
    done = cli("depth", folder, "-o", small_disk, *args)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "p_depth.exr" in lines[0] and "no space left" in lines[0].lower(), done.stderr
    assert "p_depth.exr" not in disk_files(small_disk) and not parts(small_disk)


@pytest.mark.parametrize("command", ["dof", "mesh", "parallax"])
def test_commands_on_a_full_disk(small_disk, tmp_path, command):
    if command == "parallax":
        pytest.importorskip("moderngl")
        pytest.importorskip("av")
    if command == "dof":
        pytest.importorskip("cv2")
    photos, depths = scene(tmp_path, 1, 160, 120)
    out = {"dof": small_disk / "x.png", "mesh": small_disk, "parallax": small_disk / "x.mp4"}[command]
    extra = {"mesh": ["--format", "ply"], "parallax": ["--duration", "1"]}.get(command, [])
    fill(small_disk, leave=4096)
    done = cli(command, photos[0], "-o", out, "--depth", depths, *extra)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "no space left" in lines[0].lower(), done.stderr
    assert not parts(small_disk)


def test_read_only_output_folder(tmp_path):
    photos, depths = scene(tmp_path, 1)
    if IS_ROOT:
        with _mount(tmp_path / "ro", "ro,size=64k") as ro:
            done = cli("mesh", photos[0], "-o", ro / "out", "--depth", depths, "--format", "ply")
            assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
            assert len(error_lines(done.stderr)) == 1 and "read-only" in done.stderr.lower(), done.stderr
    ro = tmp_path / "locked"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        done = cli("mesh", photos[0], "-o", ro / "out", "--depth", depths, "--format", "ply", prefix=unprivileged())
    finally:
        ro.chmod(0o755)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    line = error_lines(done.stderr)
    assert len(line) == 1 and "locked" in line[0], done.stderr
    assert "permission denied" in line[0].lower() or "not writable" in line[0], done.stderr
    assert list(ro.iterdir()) == []


# -- unreadable inputs -------------------------------------------------------------------------
def test_a_symlink_loop_says_so(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(InputError, match="symlink loop"):
        load_image(tmp_path / "a.png")
    from depthstudio.geometry.depth import find_depth_file, read_depth_file

    (tmp_path / "d.npy").symlink_to(tmp_path / "d.npy")
    with pytest.raises(InputError, match="symlink loop"):
        read_depth_file(tmp_path / "d.npy")
    with pytest.raises(InputError, match="symlink loop"):
        find_depth_file(tmp_path / "a.png", tmp_path / "d.npy")
    photos, _ = scene(tmp_path / "s", 1)
    done = cli("mesh", photos[0], "-o", tmp_path / "out", "--depth", tmp_path / "d.npy")
    assert done.returncode == 1 and "symlink loop" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_dangling_symlink_says_so(tmp_path):
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(InputError, match="broken symlink"):
        load_image(tmp_path / "gone.png")


def test_an_unreadable_file_says_permission_denied(tmp_path):
    photos, depths = scene(tmp_path, 1)
    photos[0].chmod(0)
    (depths / "p000.npy").chmod(0)
    script = ("import sys\nfrom depthstudio.errors import InputError\n"
              "from depthstudio.io.images import load_image\nfrom depthstudio.geometry.depth import read_depth_file\n"
              "for f, p in ((load_image, sys.argv[1]), (read_depth_file, sys.argv[2])):\n"
              "    try:\n        f(p)\n    except InputError as e:\n        print(e)\n")
    done = subprocess.run([*unprivileged(), sys.executable, "-c", script, str(photos[0]), str(depths / "p000.npy")],
                          capture_output=True, text=True, env=child_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{photos[0]}: permission denied", f"{depths / 'p000.npy'}: permission denied"]
    done = cli("mesh", photos[0], "-o", tmp_path / "out", "--depth", depths, "--format", "ply", prefix=unprivileged())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{photos[0]}: permission denied" in done.stderr and "corrupt" not in done.stderr, done.stderr


# -- stale temporary files ---------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporary_files_of_a_target_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "scene.v2.ply"
    dead = tmp_path / f".scene.v2.{_dead_pid()}.ab_c12.part.ply"
    alive = tmp_path / f".scene.v2.{os.getppid()}.xyz123.part.ply"  # a writer still running
    other = tmp_path / f".other.{_dead_pid()}.ab_c12.part.ply"  # another target's: not ours to remove
    for p in (dead, alive, other):
        p.write_bytes(b"partial")
    write_bytes(target, b"ply")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, target.name])
    assert remove_stale_parts(tmp_path / "other.ply") == [other]


# -- interruption ------------------------------------------------------------------------------
def _start(args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "depthstudio", *map(str, args)], cwd=cwd, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen, ready, what: str, limit: float = 240.0) -> None:
    """Poll until ``ready()`` (a file appeared); the run must still be going."""
    deadline = time.monotonic() + limit
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"finished before {what} appeared (rc {proc.returncode}): {err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what} never appeared")
        time.sleep(0.02)


def _case(name: str, tmp_path: Path, tiny_onnx_factory, n: int = 150):
    """(args, output folder, what to wait for, outputs that must not exist after a SIGTERM); batches
    have ``n`` inputs."""
    out = tmp_path / "out"
    if name == "depth":
        photos, _ = scene(tmp_path, n, 48, 36)
        model = tiny_onnx_factory()
        return (["depth", photos[0].parent, "-o", out, "--model", model, "--input-size", "28"], out,
                "_depth.npy", None)
    if name == "mesh":
        photos, depths = scene(tmp_path, n, 48, 36)
        return (["mesh", photos[0].parent, "-o", out, "--depth", depths, "--format", "ply"], out, ".ply", None)
    if name == "parallax":
        pytest.importorskip("moderngl")
        pytest.importorskip("av")
        photos, depths = scene(tmp_path, 1, 96, 64)
        return (["parallax", photos[0], "-o", out / "move.mp4", "--depth", depths, "--duration", "6",
                 "--samples", "0"], out, ".part", "move.mp4")
    if name == "dof":
        pytest.importorskip("av")
        pytest.importorskip("cv2")
        photos, depths = scene(tmp_path, 1, 96, 64)
        return (["dof", photos[0], "-o", out / "pull.mp4", "--depth", depths, "--duration", "8", "--fps", "30"],
                out, ".part", "pull.mp4")
    if name == "video":
        pytest.importorskip("av")
        pytest.importorskip("cv2")
        from depthstudio.video.synthetic import scene_frames, write_clip
        from depthstudio.video.writer import VideoWriter

        clip = write_clip(tmp_path / "walk.mp4", (rgb for rgb, _ in scene_frames(64, 48, 150)), fps=25)
        depth = tmp_path / "walk_depth.mkv"
        with VideoWriter(depth, fps=25, size=(64, 48)) as video:
            for _, disp in scene_frames(64, 48, 150):
                video.write(np.round(disp * 65535).astype(np.uint16))
        return (["video", clip, "-o", out, "--effect", "dof", "--depth", depth], out, ".part", "walk_dof.mp4")
    if name == "stereo":
        pytest.importorskip("moderngl")
        photos, depths = scene(tmp_path, n, 48, 36)
        return (["stereo", photos[0].parent, "-o", out, "--depth", depths], out, "p000", None)
    if name == "demo":
        pytest.importorskip("moderngl")
        pytest.importorskip("av")
        return (["demo", "--sample-depth", "--steps", "parallax", "-o", out], out, "sample_parallax", "sample_parallax.gif")
    raise AssertionError(name)


COMMANDS = ["depth", "mesh", "parallax", "dof", "video", "stereo", "demo"]


@pytest.fixture
def tiny_onnx_factory(request):
    return lambda: request.getfixturevalue("tiny_onnx")


def _appeared(out: Path, marker: str):
    def ready() -> bool:
        if not out.is_dir():
            return False
        names = [p.name for p in out.iterdir()]
        if marker == ".part":
            return any(".part" in n for n in names)
        return any(marker in n for n in names)
    return ready


@pytest.mark.parametrize("command", COMMANDS)
def test_sigterm_stops_cleanly(command, tmp_path, tiny_onnx_factory):
    args, out, marker, final = _case(command, tmp_path, tiny_onnx_factory)
    proc = _start(args, tmp_path)
    _wait_for(proc, _appeared(out, marker), marker)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("still running a minute after SIGTERM")
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    assert "interrupted" in err.splitlines()[-1]
    assert not parts(out), parts(out)
    if final is not None:
        assert not (out / final).exists()
    if command in ("depth", "mesh", "stereo"):  # the batch stopped early
        stems = {p.name.split("_")[0].split(".")[0] for p in out.iterdir() if p.name.startswith("p")}
        assert len(stems) < 150
    if command in ("depth", "mesh"):  # and every item is whole or absent
        for stem in stems:
            expected = (f"{stem}_depth.npy", f"{stem}_depth.png") if command == "depth" else (f"{stem}.ply",)
            assert all((out / name).is_file() for name in expected), stem


@pytest.mark.parametrize("command", ["mesh", "parallax"])
def test_sigint_stops_cleanly_with_130(command, tmp_path, tiny_onnx_factory):
    """Ctrl-C: the same clean stop, exit 130."""
    args, out, marker, final = _case(command, tmp_path, tiny_onnx_factory)
    proc = _start(args, tmp_path)
    _wait_for(proc, _appeared(out, marker), marker)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("still running a minute after SIGINT")
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and not parts(out)
    if final is not None:
        assert not (out / final).exists()


@pytest.mark.parametrize("command", [c if c != "demo" else pytest.param(c, marks=pytest.mark.slow) for c in COMMANDS])
def test_sigkill_leftovers_are_removed_by_the_next_run(command, tmp_path, tiny_onnx_factory):
    args, out, marker, final = _case(command, tmp_path, tiny_onnx_factory, n=20)
    proc = _start(args, tmp_path)
    _wait_for(proc, _appeared(out, ".part" if final else marker), marker)
    proc.kill()
    proc.communicate()
    if final is not None:  # a video's temporary file lives for the whole encode: the kill left it
        assert parts(out)
    done = subprocess.run([sys.executable, "-m", "depthstudio", *map(str, args)], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not parts(out), parts(out)
    if final is not None:
        assert (out / final).is_file()


@pytest.mark.slow
def test_sigterm_during_a_12_megapixel_export_leaves_nothing(tmp_path):
    w, h = 4000, 3000
    photo = tmp_path / "big.png"
    Image.fromarray(np.kron(texture(w // 8, h // 8), np.ones((8, 8, 1), np.uint8))).save(photo, compress_level=1)
    np.save(tmp_path / "big.npy", disparity(w, h))
    out = tmp_path / "out"
    # every pixel a vertex (--max-faces 0): a 12 MP mesh, a PLY of about 650 MB
    proc = _start(["mesh", photo, "-o", out, "--depth", tmp_path / "big.npy", "--max-faces", "0", "--format", "ply"],
                  tmp_path)
    _wait_for(proc, _appeared(out, ".part.ply"), "the PLY's temporary file", limit=600)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("still running a minute after SIGTERM")
    assert proc.returncode == 143, err[-2000:]
    assert not parts(out)
    assert not (out / "big.ply").exists()


# -- missing optional packages -----------------------------------------------------------------
def test_a_missing_optional_package_is_one_line_naming_the_extra(tmp_path):
    """`dof` without OpenCV (hidden from the child): one line naming the package and the extra, exit 1."""
    photos, depths = scene(tmp_path, 1)
    code = ("import sys\nsys.modules['cv2'] = None  # as if OpenCV were not installed\n"
            "from depthstudio.cli import main\nsys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "dof", str(photos[0]), "-o", str(tmp_path / "x.png"),
                           "--depth", str(depths)], capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == "depthstudio: error: this needs the optional package 'cv2': pip install 'depthstudio[render]'"
    assert not (tmp_path / "x.png").exists() and not parts(tmp_path)
