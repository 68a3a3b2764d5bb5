"""Parallax: camera paths and presets, revealed-area fill, video files, the CLI and its errors."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from depthstudio.errors import InputError, SettingsError
from depthstudio.geometry.camera import Intrinsics
from depthstudio.geometry.unproject import project
from depthstudio.render.camera_path import PRESETS, CameraPath, KeyframePath, PathSettings
from depthstudio.render.parallax import ParallaxRenderer, ParallaxSettings
from depthstudio.settings import parse_size
from depthstudio.video.writer import read_video

pytest.importorskip("moderngl")
pytestmark = pytest.mark.gl
pytest.importorskip("av")


W, H = 160, 120
WALL_Z, BOX_Z = 4.0, 2.0
BOX = (slice(40, 80), slice(55, 105))
MAGENTA = (1.0, 0.0, 1.0)


def box_scene(rng):
    """A red textured square at 2 m in front of a blue/green textured wall at 4 m."""
    noise = rng.integers(0, 256, (H // 4, W // 4, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(noise, 4, 0), 4, 1).astype(np.int32)
    wall = np.stack([rgb[..., 0] // 6, 60 + rgb[..., 1] // 2, 60 + rgb[..., 2] // 2], -1)
    square = np.stack([160 + rgb[..., 0] // 3, rgb[..., 1] // 6, rgb[..., 2] // 6], -1)
    out = wall.copy()
    out[BOX] = square[BOX]
    z = np.full((H, W), WALL_Z, np.float32)
    z[BOX] = BOX_Z
    return out.astype(np.uint8), z, Intrinsics.from_fov(W, H, 60.0)


def is_red(img):
    img = img.astype(np.int32)
    return img[..., 0] > img[..., 1] + img[..., 2]


def is_magenta(img):
    return (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] > 200)


# -- camera paths -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_starts_at_the_photo(name):
    path = CameraPath(PathSettings(preset=name, duration=2.0), steady_depth=3.0)
    pose = path.pose(0.0)
    assert np.allclose(pose.position, 0.0) and np.allclose(pose.rotation, np.eye(3)) and pose.zoom == pytest.approx(1.0)
    assert path.frame_count(30) == 60
    assert len(path.frame_times(60)) == 60
    assert path.max_travel() > 0


def test_loops_close_and_one_way_moves_end():
    cycle = CameraPath(PathSettings(preset="circle"), 3.0)
    assert cycle.loop == "cycle"
    assert np.allclose(cycle.pose(1.0).position, cycle.pose(0.0).position, atol=1e-12)
    pingpong = CameraPath(PathSettings(preset="zoom-in"), 3.0)
    assert pingpong.loop == "pingpong"
    assert np.allclose(pingpong.pose(0.5).position, [0, 0, -0.15 * 3.0])
    # Seamless: the frame after the last is the first.
    times = pingpong.frame_times(10)
    assert times[-1] == pytest.approx(0.9)
    once = CameraPath(PathSettings(preset="zoom-in", loop="none"), 3.0)
    assert once.frame_times(10)[-1] == 1.0
    assert once.pose(1.0).position[2] == pytest.approx(-0.45)
    # A one-way move asked to cycle goes out and back instead of jumping.
    assert CameraPath(PathSettings(preset="ken-burns", loop="cycle"), 3.0).loop == "pingpong"


def test_intensity_scales_travel():
    a = CameraPath(PathSettings(preset="swing", intensity=1.0), 2.0).max_travel()
    b = CameraPath(PathSettings(preset="swing", intensity=2.5), 2.0).max_travel()
    assert b == pytest.approx(2.5 * a)


@pytest.mark.parametrize("preset", ["swing", "circle", "dolly-zoom", "ken-burns"])
def test_steady_plane_projects_to_the_same_pixels(preset):
    k = Intrinsics.from_fov(W, H, 60.0)
    d = 3.0
    path = CameraPath(PathSettings(preset=preset, intensity=2.0), d)
    on_plane = np.array([[0.0, 0.0, -d]])
    if preset == "dolly-zoom":  # the whole plane keeps its place and size
        on_plane = np.array([[x, y, -d] for x in (-0.8, 0.0, 0.8) for y in (-0.5, 0.5)])
    start = project(on_plane, k)
    for u in np.linspace(0, 1, 9):
        pose = path.pose(float(u))
        cam = (np.c_[on_plane, np.ones(len(on_plane))] @ pose.view_matrix().T)[:, :3]
        assert np.allclose(project(cam, pose.intrinsics(k)), start, atol=1e-6), (preset, u)


def test_keyframes(tmp_path):
    spec = {"duration": 3, "loop": "none", "interpolation": "linear", "keyframes": [
        {"t": 0, "position": [0, 0, 0]}, {"t": 0.5, "position": [0.1, 0, -0.2], "zoom": 1.2},
        {"t": 1, "position": [0, 0.1, 0], "rotation": [2, 0, 0]}]}
    file = tmp_path / "move.json"
    file.write_text(json.dumps(spec))
    path = CameraPath(PathSettings(preset=str(file)), steady_depth=2.0)
    assert path.duration == 3.0
    assert path.frame_count(10) == 30
    assert np.allclose(path.pose(0.5).position, [0.2, 0, -0.4])
    assert path.pose(0.5).zoom == pytest.approx(1.2)
    assert np.allclose(path.pose(1.0).position, [0, 0.2, 0])
    smooth = KeyframePath.from_dict({**spec, "interpolation": "smooth"})
    assert np.allclose(smooth.sample(0.5)[0], [0.1, 0, -0.2])  # passes through its keyframes


def test_bad_keyframes(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        KeyframePath.load(bad)
    bad.write_text(json.dumps({"keyframes": [{"position": [0, 0]}]}))
    with pytest.raises(InputError, match="keyframe 0"):
        KeyframePath.load(bad)
    with pytest.raises(InputError, match="not found"):
        KeyframePath.load(tmp_path / "missing.json")


def test_bad_settings():
    with pytest.raises(SettingsError, match="unknown parallax preset 'wobble'"):
        PathSettings(preset="wobble").validate()
    with pytest.raises(SettingsError, match="duration"):
        PathSettings(duration=0).validate()
    with pytest.raises(SettingsError, match="steady"):
        PathSettings(steady=2).validate()
    with pytest.raises(SettingsError, match="between 2x2"):
        parse_size("0x100")
    with pytest.raises(SettingsError, match="WIDTHxHEIGHT"):
        parse_size("big")
    with pytest.raises(SettingsError, match="between 2x2"):
        ParallaxSettings(size=(0, 0)).validate()
    with pytest.raises(SettingsError, match="frame rate"):
        ParallaxSettings(fps=0).validate()


# -- rendering --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def box_renderer():
    rgb, z, k = box_scene(np.random.default_rng(7))
    settings = ParallaxSettings(path=PathSettings(preset="swing", intensity=2.0, duration=1.0), fps=12,
                                background=MAGENTA)
    with ParallaxRenderer(rgb, (z, z > 0), settings, intrinsics=k) as renderer:
        yield renderer, rgb, z, k


def test_first_frame_is_the_photo(box_renderer):
    renderer, rgb, z, k = box_renderer
    first = renderer.frame(0.0)
    assert first.shape == rgb.shape
    mse = np.mean((first.astype(float) - rgb) ** 2)
    assert 10 * math.log10(255**2 / mse) >= 30


def test_revealed_areas_are_filled_not_stretched(box_renderer):
    """Moved sideways, no pixel is empty, and the square's colour stays inside its new outline."""
    renderer, rgb, z, k = box_renderer
    import cv2

    for u in (0.25, 0.75):  # the swing's extremes, both directions
        pose = renderer.pose(u)
        frame = renderer.render_pose(pose)
        assert not is_magenta(frame).any(), "holes in the revealed area"
        # Where the square must be now: its corners projected through the moved camera.
        corners = np.array([[c, r] for r in (BOX[0].start, BOX[0].stop) for c in (BOX[1].start, BOX[1].stop)], float)
        pts = np.stack([(corners[:, 0] - k.cx) / k.fx * BOX_Z, (k.cy - corners[:, 1]) / k.fy * BOX_Z,
                        -np.full(4, BOX_Z)], 1)
        cam = (np.c_[pts, np.ones(4)] @ pose.view_matrix().T)[:, :3]
        xy = project(cam, pose.intrinsics(renderer.out_intrinsics))
        x0, x1, y0, y1 = xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max()
        shift = abs(x0 - BOX[1].start)
        assert shift > 4, "the move is too small to reveal anything"
        footprint = np.zeros((H, W), np.uint8)
        footprint[int(round(y0)):int(round(y1)), int(round(x0)):int(round(x1))] = 1
        grown = cv2.dilate(footprint, np.ones((5, 5), np.uint8)).astype(bool)
        shrunk = cv2.erode(footprint, np.ones((5, 5), np.uint8)).astype(bool)
        red = is_red(frame)
        assert not (red & ~grown).any(), "square colours smeared outside the square (stretched triangles)"
        assert red[shrunk].mean() > 0.97
        # The uncovered strip of wall is wall-coloured (filled from the wall, not the square).
        old = np.zeros((H, W), bool)
        old[BOX] = True
        revealed = old & ~grown
        assert revealed.sum() > 40
        assert not red[revealed].any()


def test_without_fill_the_holes_show(box_renderer):
    renderer, rgb, z, k = box_renderer
    settings = ParallaxSettings(path=renderer.settings.path, background=MAGENTA)
    settings.fill.enabled = False
    with ParallaxRenderer(rgb, (z, z > 0), settings, intrinsics=k) as bare:
        assert is_magenta(bare.frame(0.25)).sum() > 40


def test_steady_depth_stays_still(rng):
    """With the wall as the steady depth, the wall's pixels do not move; the square does."""
    rgb, z, k = box_scene(rng)
    settings = ParallaxSettings(path=PathSettings(preset="circle", intensity=2.0, steady_depth=WALL_Z))
    with ParallaxRenderer(rgb, (z, z > 0), settings, intrinsics=k) as renderer:
        first, moved = renderer.frame(0.0), renderer.frame(0.3)
    far_from_box = np.ones((H, W), bool)
    far_from_box[BOX[0].start - 16:BOX[0].stop + 16, BOX[1].start - 16:BOX[1].stop + 16] = False
    diff = np.abs(first.astype(int) - moved.astype(int)).max(axis=2)
    assert np.percentile(diff[far_from_box], 99) <= 3
    assert diff[BOX].mean() > 20


@pytest.mark.parametrize("ext", ["mp4", "webm", "gif"])
def test_written_videos(tmp_path, rng, ext):
    rgb, z, k = box_scene(rng)
    fps = 20 if ext == "gif" else 12
    settings = ParallaxSettings(path=PathSettings(preset="circle", duration=1.0), fps=fps, size=(96, 64))
    with ParallaxRenderer(rgb, (z, z > 0), settings, intrinsics=k) as renderer:
        assert renderer.frame_count() == fps
        renderer.write_video(tmp_path / f"clip.{ext}")
    frames, rate = read_video(tmp_path / f"clip.{ext}")
    assert len(frames) == fps
    assert frames[0].shape == (64, 96, 3)
    assert rate == pytest.approx(fps, rel=0.03)
    # A loop: the last frame is one step before the first, so it is as close to the first as
    # neighbouring frames are to each other, and far closer than the middle of the move.
    def d(a, b):
        return float(np.abs(a.astype(float) - b.astype(float)).mean())
    step = d(frames[0], frames[1])
    assert d(frames[-1], frames[0]) <= 2.0 * step + 1.0
    assert d(frames[len(frames) // 2], frames[0]) > 2.0 * d(frames[-1], frames[0])


# -- command line -----------------------------------------------------------------------------
@pytest.fixture
def photo_and_depth(tmp_path, rng):
    from PIL import Image

    rgb, z, _ = box_scene(rng)
    Image.fromarray(rgb).save(tmp_path / "box.png")
    np.save(tmp_path / "box_depth.npy", z)
    return tmp_path / "box.png", tmp_path / "box_depth.npy"


def cli(*args):
    from depthstudio.cli import main

    return main([str(a) for a in args])


def test_cli_writes_a_video(tmp_path, photo_and_depth, capsys):
    photo, depth = photo_and_depth
    out = tmp_path / "out" / "box.mp4"
    code = cli("parallax", photo, "-o", out, "--depth", depth, "--depth-kind", "metric", "--preset", "swing",
               "--duration", "0.5", "--fps", "10", "--size", "80x60")
    assert code == 0, capsys.readouterr().err
    frames, rate = read_video(out)
    assert len(frames) == 5 and frames[0].shape == (60, 80, 3) and rate == pytest.approx(10)


@pytest.mark.parametrize("args, message", [
    (["--preset", "wobble"], "unknown parallax preset"),
    (["--size", "0x10"], "between 2x2"),
    (["--duration", "-1"], "duration"),
])
def test_cli_bad_settings(tmp_path, photo_and_depth, capsys, args, message):
    photo, depth = photo_and_depth
    code = cli("parallax", photo, "-o", tmp_path / "x.mp4", "--depth", depth, *args)
    assert code == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()


def test_cli_bad_outputs(tmp_path, photo_and_depth, capsys):
    photo, depth = photo_and_depth
    assert cli("parallax", photo, "-o", tmp_path / "x.avi", "--depth", depth) == 1
    assert "use .mp4, .webm or .gif" in capsys.readouterr().err
    (tmp_path / "file").write_text("not a folder")
    assert cli("parallax", photo, "-o", tmp_path / "file" / "x.mp4", "--depth", depth) == 1
    assert "file" in capsys.readouterr().err
    assert not list(tmp_path.glob("**/*.mp4"))


def test_cli_with_tiny_model(tmp_path, photo_and_depth, tiny_onnx, capsys):
    photo, _ = photo_and_depth
    out = tmp_path / "tiny.gif"
    code = cli("parallax", photo, "-o", out, "--model", tiny_onnx, "--duration", "0.5", "--fps", "10")
    assert code == 0, capsys.readouterr().err
    frames, _ = read_video(out)
    assert len(frames) == 5 and frames[0].shape == (H, W, 3)


def test_room_scene_true_depth(room_scene, tmp_path):
    """The ground-truth room, circled at twice the default travel: no holes, first frame = photo."""
    from PIL import Image

    rgb = np.asarray(Image.open(room_scene / "rgb.png").convert("RGB"))
    z = np.load(room_scene / "depth.npy")
    cam = json.loads((room_scene / "camera.json").read_text())
    k = Intrinsics(cam["fx"], cam["fy"], cam["cx"], cam["cy"], cam["width"], cam["height"])
    settings = ParallaxSettings(path=PathSettings(preset="circle", intensity=2.0), background=MAGENTA)
    with ParallaxRenderer(rgb, (z, z > 0), settings, intrinsics=k) as renderer:
        first = renderer.frame(0.0)
        mse = np.mean((first.astype(float) - rgb) ** 2)
        assert 10 * math.log10(255**2 / mse) >= 30
        for u in np.linspace(0.0, 1.0, 7):
            assert not is_magenta(renderer.frame(float(u))).any()


def test_odd_inputs(rng):
    """Tiny photos, holes in the depth, transparent pixels: frames come out; no depth at all: a clear error."""
    from depthstudio.depthmap import DepthMap
    from depthstudio.io.images import Photo

    settings = ParallaxSettings(path=PathSettings(preset="zoom-out", duration=0.2), fps=10)
    with ParallaxRenderer(rng.integers(0, 255, (2, 2, 3), dtype=np.uint8),
                          DepthMap(np.array([[1, 2], [3, 4]], np.float32)), settings) as r:
        assert r.frame(0.5).shape == (2, 2, 3)
    d = rng.random((60, 80)).astype(np.float32) + 0.1
    d[10:20] = np.nan
    d[30:40] = 0
    alpha = np.ones((60, 80), bool)
    alpha[:, :10] = False
    with ParallaxRenderer(Photo(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), alpha=alpha), DepthMap(d),
                          settings) as r:
        assert r.frame(0.5).shape == (60, 80, 3)
    with pytest.raises(InputError, match="no valid pixels"):
        ParallaxRenderer(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), DepthMap(np.zeros((60, 80), np.float32)),
                         settings)
