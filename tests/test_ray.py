"""Batches on a real Ray cluster (issue 17): a head node and a second node on this machine, loopback only.

The same outputs as the local run, byte for byte; a bad input among good ones; a worker killed in
the middle of a run; a run interrupted with Ctrl-C and resumed. The cluster runs in a network
namespace that holds only loopback (root; the cluster tests skip with the reason otherwise) and
dies with the test run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from depthstudio.cli import main
from tests.ray_cluster import REPO, LoopbackCluster, Unavailable, wait_for

N_PHOTOS = 12
MODEL = ["--input-size", "56"]


def _photo(rng, w, h):
    base = np.kron(rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3)), np.ones((8, 8, 1)))[:h, :w]
    return base.astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(17)
    for i in range(N_PHOTOS):
        Image.fromarray(_photo(rng, 160 + 8 * i, 120)).save(folder / f"p{i:02d}.{'png' if i % 3 else 'jpg'}")
    return folder


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    try:
        c = LoopbackCluster(cpus=(1, 1)).start()
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield c
    finally:
        c.stop()


def files(folder):
    """{name: bytes}; a USDZ by its members' bytes (the archive stores the time its layer was packaged,
    so two local runs differ there too)."""
    import zipfile

    found = {}
    for p in sorted(folder.iterdir()):
        if p.suffix == ".usdz":
            with zipfile.ZipFile(p) as z:
                found[p.name] = [(i.filename, z.read(i)) for i in z.infolist()]
        elif p.is_file():
            found[p.name] = p.read_bytes()
    return found


def parts(folder):
    return [p.name for p in folder.iterdir() if ".part" in p.name]


def ray_cli(cluster, args, **kwargs):
    env = {**cluster.env, "PYTHONUNBUFFERED": "1"}
    cmd = cluster.driver([sys.executable, "-m", "depthstudio", *args, "--ray", cluster.address])
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc, timeout=180):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _frames(path):
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray() for f in container.decode(video=0)]


# -- no cluster needed ----------------------------------------------------------------------------
def test_without_ray_one_clear_message(tmp_path, photos):
    code = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
            "from depthstudio.cli import main\n"
            f"sys.exit(main(['depth', {str(photos)!r}, '-o', {str(tmp_path / 'out')!r}, '--ray']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'depthstudio[ray]'" in lines[0], result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_ray_flags_are_checked(tmp_path, photos, capsys):
    pytest.importorskip("ray")
    assert main(["depth", str(photos), "-o", str(tmp_path), "--ray", "not an address"]) == 1
    assert "--ray ADDRESS" in capsys.readouterr().err
    assert main(["mesh", str(photos), "-o", str(tmp_path), "--ray-workers", "2"]) == 1
    assert "apply to --ray" in capsys.readouterr().err
    assert main(["depth", str(photos), "-o", str(tmp_path), "--ray", "--ray-workers", "0"]) == 1
    assert "--ray-workers" in capsys.readouterr().err


def test_object_store_urls_in_and_out(tmp_path, photos, tiny_onnx, capsys):
    """Inputs listed from and outputs written to fsspec URLs (memory:// here: the same code as s3://)."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    names = sorted(p.name for p in photos.iterdir())[:3]
    for name in names:
        fs.pipe(f"/ds-test/in/{name}", (photos / name).read_bytes())
    fs.pipe("/ds-test/in/notes.txt", b"not an image: not listed")
    args = ["--model", str(tiny_onnx), *MODEL, "--format", "glb,ply"]
    local = tmp_path / "local"
    assert main(["mesh", *[str(photos / n) for n in names], "-o", str(local), *args]) == 0
    assert main(["mesh", "memory://ds-test/in/", "-o", "memory://ds-test/out", *args]) == 0
    out = capsys.readouterr().out
    assert "3 meshes written" in out and "memory://ds-test/out" in out
    remote = {p.rsplit("/", 1)[1]: fs.cat(p) for p in fs.find("/ds-test/out")}
    expected = {p.name: p.read_bytes() for p in local.iterdir()}
    assert sorted(remote) == sorted(expected)
    for name in expected:
        if name.endswith(".camera.json"):  # names its input: the URL, not a temporary copy
            a, b = json.loads(remote[name]), json.loads(expected[name])
            assert a["image"].pop("path").startswith("memory://") and b["image"].pop("path").startswith(str(photos))
            assert a == b
        else:
            assert remote[name] == expected[name], name
    # resume: everything there is skipped; a missing object is redone
    fs.rm("/ds-test/out/" + names[0].rsplit(".", 1)[0] + ".glb")
    assert main(["mesh", "memory://ds-test/in/", "-o", "memory://ds-test/out", *args]) == 0
    assert "1 meshes written, 2 skipped" in capsys.readouterr().out
    # a missing input is reported under its URL
    assert main(["mesh", "memory://ds-test/in/nope.jpg", "-o", "memory://ds-test/out", *args]) == 1
    assert "memory://ds-test/in/nope.jpg" in capsys.readouterr().err
    fs.rm("/ds-test", recursive=True)


# -- the cluster ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_cluster_is_two_loopback_nodes(cluster):
    assert [n["ip"] for n in cluster.nodes] == ["127.0.0.1", "127.0.0.1"]
    assert sum(n["cpus"] for n in cluster.nodes) == 2


@pytest.mark.slow
def test_depth_on_the_cluster_equals_the_local_run(cluster, photos, tiny_onnx, tmp_path):
    args = [str(photos), "--model", str(tiny_onnx), *MODEL, "--exr", "--color"]
    assert main(["depth", *args, "-o", str(tmp_path / "local")]) == 0
    code, out, err = finish(ray_cli(cluster, ["depth", *args, "-o", str(tmp_path / "ray")]))
    assert code == 0, err
    assert f"{N_PHOTOS} depth maps written" in out
    local, remote = files(tmp_path / "local"), files(tmp_path / "ray")
    assert len(local) == 5 * N_PHOTOS and sorted(local) == sorted(remote)
    assert [n for n in local if local[n] != remote[n]] == []
    assert "Traceback" not in err


@pytest.mark.slow
def test_mesh_with_a_bad_input_among_good_ones(cluster, photos, tiny_onnx, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for p in sorted(photos.iterdir())[:4]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    args = [str(folder), "--model", str(tiny_onnx), *MODEL, "--format", "obj,ply,glb"]
    assert main(["mesh", *args, "-o", str(tmp_path / "local")]) == 1
    code, out, err = finish(ray_cli(cluster, ["mesh", *args, "-o", str(tmp_path / "ray")]))
    assert code == 1  # as locally: one input failed
    assert "4 meshes written" in out and "1 failed" in out
    errors = [line for line in err.splitlines() if line.startswith("depthstudio: error:")]
    assert len(errors) == 1 and "broken.jpg" in errors[0], err
    assert "Traceback" not in err
    local, remote = files(tmp_path / "local"), files(tmp_path / "ray")
    assert len(local) == 4 * 7 and sorted(local) == sorted(remote)  # obj mtl texture ply glb camera settings
    assert [n for n in local if local[n] != remote[n]] == []
    assert not [n for n in remote if n.startswith("broken")]


@pytest.mark.slow
@pytest.mark.gl
def test_stereo_on_the_cluster_equals_the_local_run(cluster, photos, tiny_onnx, tmp_path):
    pytest.importorskip("moderngl")
    folder = tmp_path / "in"
    folder.mkdir()
    for p in sorted(photos.iterdir())[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    args = [str(folder), "--model", str(tiny_onnx), *MODEL, "--layout", "sbs"]
    try:
        assert main(["stereo", *args, "-o", str(tmp_path / "local")]) == 0
    except Exception as exc:  # noqa: BLE001 - no OpenGL here: nothing to compare
        pytest.skip(f"no OpenGL context: {exc}")
    code, out, err = finish(ray_cli(cluster, ["stereo", *args, "-o", str(tmp_path / "ray")]))
    assert code == 0, err
    assert "3 stereo pictures written" in out
    local, remote = files(tmp_path / "local"), files(tmp_path / "ray")
    assert len(local) == 6 and sorted(local) == sorted(remote)
    assert [n for n in local if local[n] != remote[n]] == []


@pytest.mark.slow
def test_video_clips_on_the_cluster_equal_the_local_run(cluster, tiny_onnx, tmp_path):
    pytest.importorskip("av")
    from depthstudio.video.synthetic import scene_frames, write_clip

    clips = tmp_path / "clips"
    clips.mkdir()
    names = []
    for i in range(2):
        frames = (rgb for rgb, _ in scene_frames(64, 48, 6 + 2 * i))
        names.append(str(write_clip(clips / f"c{i}.mp4", frames, fps=12)))
    args = [*names, "--model", str(tiny_onnx), *MODEL]
    assert main(["video", *args, "-o", str(tmp_path / "local")]) == 0
    code, out, err = finish(ray_cli(cluster, ["video", *args, "-o", str(tmp_path / "ray")]))
    assert code == 0, err
    assert "2 videos done" in out and out.count(" frames at ") == 2  # whole clips, one line each
    local, remote = files(tmp_path / "local"), files(tmp_path / "ray")
    expected = sorted(f"c{i}_depth.{x}" for i in range(2) for x in ("json", "mkv", "mp4", "settings.json"))
    assert sorted(local) == sorted(remote) == expected
    # The 16-bit depth stream's frames and the sidecar are the same; the files themselves are not
    # comparable byte for byte even between two local runs: Matroska stores a random segment UID,
    # and the H.264 preview of a clip differs when the same process encoded another clip before it.
    assert [n for n in local if n.endswith(".json") and local[n] != remote[n]] == []
    for i in range(2):
        a, b = (_frames(tmp_path / side / f"c{i}_depth.mkv") for side in ("local", "ray"))
        assert len(a) == 6 + 2 * i and all(np.array_equal(x, y) for x, y in zip(a, b))
        assert len(_frames(tmp_path / "ray" / f"c{i}_depth.mp4")) == 6 + 2 * i


@pytest.mark.slow
def test_file_urls_through_the_cluster(cluster, photos, tiny_onnx, tmp_path):
    args = ["--model", str(tiny_onnx), *MODEL]
    assert main(["depth", str(photos), "-o", str(tmp_path / "local"), *args]) == 0
    code, out, err = finish(ray_cli(cluster, ["depth", f"file://{photos}/", "-o", f"file://{tmp_path}/ray", *args]))
    assert code == 0, err
    assert f"{N_PHOTOS} depth maps written" in out
    local, remote = files(tmp_path / "local"), files(tmp_path / "ray")
    assert sorted(local) == sorted(remote) and [n for n in local if local[n] != remote[n]] == []


@pytest.mark.slow
def test_a_worker_killed_mid_run(cluster, photos, tiny_onnx, tmp_path):
    args = [str(photos), "--model", str(tiny_onnx), *MODEL, "--format", "obj,ply,glb,usdz"]
    assert main(["mesh", *args, "-o", str(tmp_path / "local")]) == 0
    out_dir = tmp_path / "ray"
    proc = ray_cli(cluster, ["mesh", *args, "-o", str(out_dir)])
    try:
        # as soon as the first mesh is there, kill a worker that is running an item
        assert wait_for(lambda: (out_dir / "p00.camera.json").exists() or (out_dir / "p01.camera.json").exists()
                        or proc.poll() is not None, timeout=120)
        busy = {}
        assert wait_for(lambda: bool(busy.update(cluster.worker_pids("ray::_BatchWorker.run")) or busy)
                        or proc.poll() is not None, timeout=30)
        assert proc.poll() is None, "the run ended before a worker could be killed"
        done_at_kill = len(list(out_dir.glob("*.camera.json")))
        assert done_at_kill < N_PHOTOS
        os.kill(next(iter(busy)), signal.SIGKILL)
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, err
    assert f"{N_PHOTOS} meshes written" in out and "retried after a worker was lost" in out, out
    local, remote = files(tmp_path / "local"), files(out_dir)
    assert sorted(local) == sorted(remote)  # nothing lost, no temporary file left
    assert [n for n in local if local[n] != remote[n]] == []
    assert parts(out_dir) == []


@pytest.mark.slow
def test_interrupted_run_resumes(cluster, photos, tiny_onnx, tmp_path):
    args = [str(photos), "--model", str(tiny_onnx), *MODEL, "--exr"]
    assert main(["depth", *args, "-o", str(tmp_path / "local")]) == 0
    out_dir = tmp_path / "ray"
    proc = ray_cli(cluster, ["depth", *args, "-o", str(out_dir)])
    try:
        assert wait_for(lambda: any(out_dir.glob("*_depth.exr")) or proc.poll() is not None, timeout=120)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        code, out, err = finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130 and "interrupted" in err, err
    assert parts(out_dir) == []  # no partial file
    complete = {p.name[: -len("_depth.exr")] for p in out_dir.glob("*_depth.exr")
                if (out_dir / p.name.replace(".exr", ".npy")).exists() and (out_dir / p.name.replace(".exr", ".png")).exists()}
    assert 0 < len(complete) < N_PHOTOS, "the run was not interrupted in the middle"
    assert wait_for(lambda: not cluster.worker_pids(), timeout=30, interval=0.2)  # the actors are gone

    code, out, err = finish(ray_cli(cluster, ["depth", *args, "-o", str(out_dir)]))
    assert code == 0, err
    assert f"{N_PHOTOS - len(complete)} depth maps written" in out and f"{len(complete)} skipped" in out, out
    local, remote = files(tmp_path / "local"), files(out_dir)
    assert sorted(local) == sorted(remote)
    assert [n for n in local if local[n] != remote[n]] == []
