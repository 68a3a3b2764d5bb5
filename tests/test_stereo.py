"""Stereo 3D: eye geometry (disparity of a plane), true views of the room, every layout, VR180
metadata for photos and videos, the command line, the video effect and bad input."""
from __future__ import annotations

import importlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from depthstudio.cli import main
from depthstudio.errors import SettingsError
from depthstudio.geometry.camera import Intrinsics
from depthstudio.render.parallax import ParallaxSettings
from depthstudio.render.stereo import (
    LAYOUTS,
    StereoRenderer,
    StereoSettings,
    anaglyph,
    compose,
    parse_convergence,
    quilt_name,
    squeeze,
)

pytest.importorskip("moderngl")
pytestmark = pytest.mark.gl
cv2 = pytest.importorskip("cv2")


W, H = 160, 120
WALL_Z, BOX_Z = 4.0, 2.0
BOX = (slice(40, 80), slice(55, 105))


def psnr(a, b, mask=None) -> float:
    d = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        d = d[mask]
    return 10 * math.log10(255.0**2 / max(np.mean(d**2), 1e-12))


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


def red_centroid(img) -> float:
    img = img.astype(np.int32)
    red = img[..., 0] > img[..., 1] + img[..., 2]
    return float(np.nonzero(red)[1].mean())


def cli(*args):
    return main([str(a) for a in args])


# -- geometry -------------------------------------------------------------------------------------
def smooth_texture(rng, h, w):
    noise = rng.random((h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    big = cv2.resize(noise, (w + 16, h + 16), interpolation=cv2.INTER_CUBIC)[8:8 + h, 8:8 + w]
    return np.ascontiguousarray(np.clip(big * 255, 0, 255).astype(np.uint8))


def measured_shift(left, right) -> tuple[float, float]:
    """(dx, dy) such that right(x - dx, y - dy) matches left(x, y), to a few hundredths of a pixel:
    phase correlation, then Gauss-Newton on the brightness over the central half."""
    a = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY).astype(np.float32)
    b = cv2.cvtColor(right, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = a.shape
    crop = (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
    window = cv2.createHanningWindow((w // 2, h // 2), cv2.CV_32F)
    # copies: this OpenCV's phaseCorrelate writes the windowed picture back into its inputs
    (dx, dy), _ = cv2.phaseCorrelate(b[crop].copy(), a[crop].copy(), window)
    gy, gx = np.gradient(a)
    jac = np.stack([gx[crop].ravel(), gy[crop].ravel()], 1).astype(np.float64)
    for _ in range(20):
        moved = cv2.warpAffine(b, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_CUBIC)
        residual = (moved[crop] - a[crop]).ravel().astype(np.float64)
        step = np.linalg.lstsq(jac, residual, rcond=None)[0]
        dx, dy = dx + step[0], dy + step[1]
        if np.abs(step).max() < 1e-4:
            break
    return float(dx), float(dy)


@pytest.mark.parametrize("convergence", ["inf", "6", "2.5"])
def test_disparity_of_a_fronto_parallel_plane(rng, convergence):
    """Left x minus right x of a plane at Z is fx * B / Z minus the convergence shift fx * B / D."""
    w, h, z_plane, baseline = 320, 240, 3.0, 0.06
    rgb = smooth_texture(rng, h, w)
    z = np.full((h, w), z_plane, np.float32)
    k = Intrinsics.from_fov(w, h, 50.0)
    settings = StereoSettings(layout="pair", baseline=baseline, convergence=convergence)
    with StereoRenderer(rgb, (z, z > 0), settings, intrinsics=k) as stereo:
        left, right = stereo.eyes()
        shift = stereo.rig.convergence_shift(stereo.out_intrinsics.fx)
        fx = stereo.out_intrinsics.fx
    expected = fx * baseline / z_plane - shift
    dx, dy = measured_shift(left, right)
    assert abs(expected) > 0.5 or convergence == "2.5"
    assert dx == pytest.approx(expected, abs=0.1), (dx, expected)
    assert abs(dy) < 0.1
    if convergence == "inf":
        assert shift == 0.0
    else:
        assert shift == pytest.approx(fx * baseline / float(convergence))


def test_eyes_are_where_the_contract_puts_them(rng):
    """The left eye is the camera moved to -x: near things move right in it; the photo lies between."""
    rgb, z, k = box_scene(rng)
    with StereoRenderer(rgb, (z, z > 0), StereoSettings(baseline=0.2, convergence="inf"), intrinsics=k) as stereo:
        assert np.allclose(stereo.rig.left.position, [-0.1, 0, 0])
        assert np.allclose(stereo.rig.right.position, [0.1, 0, 0])
        left, right = stereo.eyes()
        middle = stereo.view(0.0)
    assert red_centroid(left) > red_centroid(middle) > red_centroid(right)
    assert psnr(middle, rgb) > 30  # no offset: the photo itself
    # parallel eyes: the box moves by fx * B / Z between them
    assert red_centroid(left) - red_centroid(right) == pytest.approx(k.fx * 0.2 / BOX_Z, abs=1.0)


def test_divergence_sets_the_largest_disparity(rng):
    rgb, z, k = box_scene(rng)
    settings = StereoSettings(divergence=3.0, convergence="inf")
    with StereoRenderer(rgb, (z, z > 0), settings, intrinsics=k) as stereo:
        fx = stereo.out_intrinsics.fx
        largest = np.abs(stereo.rig.disparity(np.array([BOX_Z, WALL_Z]), fx)).max()
    assert largest == pytest.approx(0.03 * W, rel=1e-3)


# -- true views -----------------------------------------------------------------------------------
SCENES = Path(__file__).resolve().parents[1].parent / "shared" / "scenes"


def stereo_scenes() -> list[str]:
    """Scenes of ../shared with true left and right views (the room, and any held-out scene)."""
    names = []
    for views in sorted(SCENES.glob("*/views/views.json")):
        data = json.loads(views.read_text())
        if {"left", "right"} <= set(data) and (views.parent / "left.png").exists():
            names.append(views.parent.parent.name)
    return names or ["room"]


@pytest.fixture(scope="module", params=stereo_scenes())
def scene_pair(request, tmp_path_factory):
    """The pair rendered with the true depth and intrinsics, the baseline between the true views."""
    from PIL import Image

    scene = SCENES / request.param
    if not (scene / "depth.npy").exists() or not (scene / "views" / "views.json").exists():
        pytest.skip(f"../shared/scenes/{request.param} is not present")
    cam = json.loads((scene / "camera.json").read_text())
    k = Intrinsics(cam["fx"], cam["fy"], cam["cx"], cam["cy"], cam["width"], cam["height"])
    views = json.loads((scene / "views" / "views.json").read_text())
    xl, xr = views["left"]["position"][0], views["right"]["position"][0]
    assert views["left"]["position"][1:] == views["right"]["position"][1:] == [0.0, 0.0] and xl == -xr
    out = tmp_path_factory.mktemp(request.param)
    code = cli("stereo", scene / "rgb.png", "-o", out, "--baseline", xr - xl, "--convergence", "inf", "--layout", "pair",
               "--depth", scene / "depth.npy", "--depth-kind", "metric", "--fx", cam["fx"], "--fy", cam["fy"],
               "--cx", cam["cx"], "--cy", cam["cy"])
    assert code == 0
    eyes = {name: np.asarray(Image.open(out / f"rgb_{name}.png")) for name in ("left", "right")}
    truth = {name: np.asarray(Image.open(scene / "views" / f"{name}.png").convert("RGB")) for name in ("left", "right")}
    photo = np.asarray(Image.open(scene / "rgb.png").convert("RGB"))
    return {"eyes": eyes, "truth": truth, "k": k, "photo": photo, "z": np.load(scene / "depth.npy"),
            "x": {"left": xl, "right": xr}, "name": request.param}


def _fill_landed() -> bool:
    try:
        importlib.import_module("depthstudio.render.evaluate")  # the fill issue's scoring module
    except ImportError:
        return False
    return True


def test_pair_reproduces_the_true_views(scene_pair):
    """--baseline 0.5 --convergence inf --layout pair: each eye is the scene seen from -/+0.25 m."""
    eyes, truth, k, photo = scene_pair["eyes"], scene_pair["truth"], scene_pair["k"], scene_pair["photo"]
    assert eyes["left"].shape == truth["left"].shape == (k.height, k.width, 3)
    scores = {name: psnr(eyes[name], truth[name]) for name in eyes}
    # the eyes moved as the true cameras did: the unmoved photo (or a swapped eye) scores far lower
    for name, other in (("left", "right"), ("right", "left")):
        assert psnr(photo, truth[name]) < scores[name] - 5
        assert psnr(eyes[other], truth[name]) < scores[name] - 5
    if min(scores.values()) < 34.0 and not _fill_landed():
        pytest.xfail(f"{scene_pair['name']}: whole-image PSNR {scores} below 34 dB: waits for the revealed-area "
                     f"fill (issue 14)")
    assert min(scores.values()) >= 34.0, scores


def test_revealed_areas_against_telea(scene_pair, capsys):
    """In the revealed areas the eyes are at least as good as a forward splat filled by Telea."""
    evaluate = pytest.importorskip("depthstudio.render.evaluate")
    eyes, truth, k, rgb, z = (scene_pair[key] for key in ("eyes", "truth", "k", "photo", "z"))
    for name in ("left", "right"):
        position = [scene_pair["x"][name], 0.0, 0.0]
        splat, covered = evaluate.forward_splat(rgb, z, z > 0, k, position)
        masks = evaluate.view_masks(covered, evaluate.frame_coverage(z, z > 0, k, position))
        telea = cv2.inpaint(splat, (~covered).astype(np.uint8), 5, cv2.INPAINT_TELEA)
        ours = psnr(eyes[name], truth[name], masks.disoccluded)
        base = psnr(telea, truth[name], masks.disoccluded)
        with capsys.disabled():
            visible = psnr(eyes[name], truth[name], masks.visible), psnr(splat, truth[name], masks.visible)
            print(f"\n{scene_pair['name']} {name}: revealed {ours:.2f} dB vs Telea {base:.2f} dB; visible "
                  f"{visible[0]:.2f} dB vs splat {visible[1]:.2f} dB")
        assert ours >= base, (name, ours, base)


# -- layouts --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def box_eyes():
    rgb, z, k = box_scene(np.random.default_rng(3))
    settings = StereoSettings(baseline=0.2, convergence="3")
    with StereoRenderer(rgb, (z, z > 0), settings, intrinsics=k) as stereo:
        left, right = stereo.eyes()
        pictures = {layout: stereo.compose(layout) for layout in ("sbs", "sbs-half", "tb", "tb-half", "cross", "pair")}
    return left, right, pictures


def test_side_by_side_and_top_bottom(box_eyes):
    left, right, pictures = box_eyes
    assert red_centroid(left) > red_centroid(right) + 2
    assert np.array_equal(pictures["sbs"], np.concatenate([left, right], 1))
    assert pictures["sbs"].shape == (H, 2 * W, 3)
    assert np.array_equal(pictures["cross"][:, :W], right) and np.array_equal(pictures["cross"][:, W:], left)
    assert np.array_equal(pictures["tb"][:H], left) and np.array_equal(pictures["tb"][H:], right)
    half = pictures["sbs-half"]
    assert half.shape == (H, W, 3)
    assert np.array_equal(half[:, :W // 2], squeeze(left, 1)) and np.array_equal(half[:, W // 2:], squeeze(right, 1))
    assert red_centroid(half[:, :W // 2]) > red_centroid(half[:, W // 2:])
    tb_half = pictures["tb-half"]
    assert tb_half.shape == (H, W, 3)
    assert psnr(tb_half[:H // 2], squeeze(left, 0)) > 60 and psnr(tb_half[H // 2:], squeeze(right, 0)) > 60


def test_anaglyph_channels(box_eyes, rng):
    left, right, _ = box_eyes
    black = np.zeros_like(left)

    def luma(img):
        return np.clip(img @ np.array([0.299, 0.587, 0.114]) + 0.5, 0, 255).astype(np.uint8)

    gray = anaglyph(left, right, "gray")
    assert np.array_equal(gray[..., 0], luma(left)) and np.array_equal(gray[..., 1], luma(right))
    assert np.array_equal(gray[..., 2], luma(right))
    half = anaglyph(left, right, "half-color")
    assert np.array_equal(half[..., 0], luma(left)) and np.array_equal(half[..., 1:], right[..., 1:])
    color = anaglyph(left, right, "color")
    assert np.array_equal(color[..., 0], left[..., 0]) and np.array_equal(color[..., 1:], right[..., 1:])
    # Dubois: red comes from the left eye, green and blue from the right one
    only_left = anaglyph(left, black, "dubois")
    only_right = anaglyph(black, right, "dubois")
    assert only_left[..., 1:].max() <= 1 and only_left[..., 0].mean() > 40
    assert only_right[..., 0].max() <= 1 and only_right[..., 1:].mean() > 40
    white = np.full_like(left, 255)
    assert np.all(np.abs(anaglyph(white, white, "dubois").astype(int) - [255, 255, 255]) <= 60)
    assert np.array_equal(compose(left, right, "anaglyph", "dubois"), anaglyph(left, right))


def test_quilt_views_and_name(rng):
    rgb, z, k = box_scene(rng)
    settings = StereoSettings(layout="quilt", baseline=0.3, convergence="inf", quilt="3x2",
                              render=ParallaxSettings(size=(80, 60)))
    with StereoRenderer(rgb, (z, z > 0), settings, intrinsics=k) as stereo:
        quilt = stereo.compose()
    assert quilt.shape == (2 * 60, 3 * 80, 3)
    assert quilt_name("photo", 3, 2, (80, 60)) == "photo_qs3x2a1.333.png"
    # view i at column i % 3 of row i // 3 counted from the bottom; view 0 is the leftmost camera
    tiles = [quilt[(1 - i // 3) * 60:(2 - i // 3) * 60, (i % 3) * 80:(i % 3 + 1) * 80] for i in range(6)]
    centroids = [red_centroid(t) for t in tiles]
    assert all(a > b for a, b in zip(centroids, centroids[1:])), centroids


def test_vr180_photo_and_its_metadata(tmp_path, rng):
    from PIL import Image

    from depthstudio.render.vr180 import read_vr180_photo

    rgb, z, _ = box_scene(rng)
    Image.fromarray(rgb).save(tmp_path / "box.png")
    np.save(tmp_path / "box_depth.npy", z)
    out = tmp_path / "out"
    code = cli("stereo", tmp_path / "box.png", "-o", out, "--depth", tmp_path / "box_depth.npy", "--depth-kind", "metric",
               "--fov", "60", "--layout", "vr180", "--baseline", "0.1", "--vr-size", "256", "--quality", "95")
    assert code == 0
    sbs = np.asarray(Image.open(out / "box_vr180_LR.jpg"))
    assert sbs.shape == (256, 512, 3)
    # the photo (60 degrees across) sits in the middle third of each eye; the rest is black
    for eye in (sbs[:, :256], sbs[:, 256:]):
        assert eye[:, :60].max() < 20 and eye[:20].max() < 20
        assert eye[128 - 10:128 + 10, 128 - 10:128 + 10].mean() > 30
    meta = read_vr180_photo(out / "box_vr180.vr.jpg")
    g = meta["gpano"]
    assert g["ProjectionType"] == "equirectangular"
    assert (int(g["FullPanoWidthPixels"]), int(g["FullPanoHeightPixels"])) == (512, 256)
    assert (int(g["CroppedAreaImageWidthPixels"]), int(g["CroppedAreaLeftPixels"])) == (256, 128)
    assert meta["mime"] == "image/jpeg"
    primary = np.asarray(Image.open(out / "box_vr180.vr.jpg"))
    right = np.asarray(Image.open(io.BytesIO(meta["right"])))
    assert primary.shape == right.shape == (256, 256, 3)
    assert psnr(primary, sbs[:, :256]) > 30 and psnr(right, sbs[:, 256:]) > 30
    assert psnr(primary, right) < psnr(right, sbs[:, 256:])  # two different eyes


def test_pair_and_settings_file_rerun(tmp_path, rng):
    from PIL import Image

    rgb, z, _ = box_scene(rng)
    Image.fromarray(rgb).save(tmp_path / "box.png")
    np.save(tmp_path / "box_depth.npy", z)
    out = tmp_path / "a"
    assert cli("stereo", tmp_path / "box.png", "-o", out, "--depth", tmp_path / "box_depth.npy", "--depth-kind", "metric",
               "--layout", "pair", "--divergence", "4", "--convergence", "3") == 0
    assert sorted(p.name for p in out.iterdir()) == ["box.settings.json", "box_left.png", "box_right.png"]
    left = np.asarray(Image.open(out / "box_left.png"))
    assert left.shape == (H, W, 3)
    saved = json.loads((out / "box.settings.json").read_text())
    assert saved["settings"]["stereo"]["divergence"] == 4.0 and saved["rig"]["convergence"] == 3.0
    again = tmp_path / "b"
    assert cli("stereo", tmp_path / "box.png", "-o", again, "--settings", out / "box.settings.json") == 0
    assert np.array_equal(np.asarray(Image.open(again / "box_left.png")), left)


@pytest.mark.parametrize("layout", [lay for lay in LAYOUTS if lay not in ("pair", "vr180", "quilt")])
def test_every_single_picture_layout_from_the_cli(tmp_path, rng, layout):
    from PIL import Image

    rgb, z, _ = box_scene(rng)
    Image.fromarray(rgb).save(tmp_path / "box.png")
    np.save(tmp_path / "box_depth.npy", z)
    assert cli("stereo", tmp_path / "box.png", "-o", tmp_path, "--depth", tmp_path / "box_depth.npy",
               "--depth-kind", "metric", "--layout", layout) == 0
    picture = np.asarray(Image.open(tmp_path / f"box_{layout}.png"))
    expected = {"sbs": (H, 2 * W), "cross": (H, 2 * W), "tb": (2 * H, W), "sbs-half": (H, W), "tb-half": (H, W),
                "anaglyph": (H, W)}[layout]
    assert picture.shape[:2] == expected


# -- video ----------------------------------------------------------------------------------------
VW, VH, VN = 96, 64, 8


@pytest.fixture(scope="module")
def clip_and_depth(tmp_path_factory):
    pytest.importorskip("av")
    from depthstudio.video.synthetic import scene_frames, write_clip
    from depthstudio.video.writer import VideoWriter

    folder = tmp_path_factory.mktemp("stereo_video")
    clip = write_clip(folder / "walk.mp4", (rgb for rgb, _ in scene_frames(VW, VH, VN)), fps=25)
    depth = folder / "walk_depth.mkv"
    with VideoWriter(depth, fps=25, size=(VW, VH)) as video:
        for _, disp in scene_frames(VW, VH, VN):
            video.write(np.round(disp * 65535).astype(np.uint16))
    return clip, depth


def test_video_side_by_side_keeps_audio(tmp_path, clip_and_depth):
    from depthstudio.video.decode import probe

    clip, depth = clip_and_depth
    out = tmp_path / "walk_sbs.mp4"
    assert cli("video", clip, "-o", out, "--effect", "stereo", "--depth", depth, "--layout", "sbs-half",
               "--divergence", "3") == 0
    info = probe(out)
    assert (info.width, info.height, info.frames) == (VW, VH, VN)
    assert info.has_audio


def test_video_vr180_has_spherical_metadata(tmp_path, clip_and_depth):
    import av

    from depthstudio.render.vr180 import read_spherical_boxes

    clip, depth = clip_and_depth
    out = tmp_path / "walk_vr.mp4"
    assert cli("video", clip, "-o", out, "--effect", "stereo", "--depth", depth, "--layout", "vr180",
               "--vr-size", "128") == 0
    boxes = read_spherical_boxes(out)
    assert boxes["stereo_mode"] == 2 and boxes["projection"] == "equirectangular"
    assert boxes["bounds"] == pytest.approx((0.0, 0.0, 0.25, 0.25))
    # FFmpeg's own MP4 reader understands them: stereo (side by side) and spherical side data
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (256, 128)
        frame = next(container.decode(stream))
        kinds = {str(sd.type).split(".")[-1] for sd in frame.side_data}
        assert {"SPHERICAL", "STEREO3D"} <= kinds
        stereo = next(sd for sd in frame.side_data if str(sd.type).endswith("STEREO3D"))
        assert int.from_bytes(bytes(stereo)[:4], "little") == 1  # AV_STEREO3D_SIDEBYSIDE
        frames = sum(1 for _ in container.decode(stream)) + 1
    assert frames == VN  # the chunk offsets were moved with the boxes: every frame still decodes
    assert container is not None


def test_video_rejects_photo_layouts(tmp_path, clip_and_depth, capsys):
    clip, depth = clip_and_depth
    assert cli("video", clip, "-o", tmp_path / "x.mp4", "--effect", "stereo", "--depth", depth, "--layout", "pair") == 1
    err = capsys.readouterr().err
    assert "pair" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()


# -- bad input ------------------------------------------------------------------------------------
@pytest.fixture
def photo_and_depth(tmp_path, rng):
    from PIL import Image

    rgb, z, _ = box_scene(rng)
    Image.fromarray(rgb).save(tmp_path / "box.png")
    np.save(tmp_path / "box_depth.npy", z)
    return tmp_path / "box.png", ["--depth", tmp_path / "box_depth.npy", "--depth-kind", "metric"]


@pytest.mark.parametrize("args, message", [
    (["--baseline", "-0.1"], "baseline"),
    (["--baseline", "0"], "baseline"),
    (["--layout", "wobble"], "layout"),
    (["--anaglyph", "green"], "anaglyph"),
    (["--convergence", "-2"], "convergence"),
    (["--baseline", "0.1", "--divergence", "2"], "cannot be used together"),
    (["--quilt", "1x1"], "quilt"),
])
def test_bad_settings_are_one_line(tmp_path, photo_and_depth, capsys, args, message):
    photo, depth = photo_and_depth
    code = cli("stereo", photo, "-o", tmp_path / "out", *depth, *args)
    assert code == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_convergence_nearer_than_everything_warns(tmp_path, photo_and_depth, capsys):
    photo, depth = photo_and_depth
    code = cli("stereo", photo, "-o", tmp_path / "out", *depth, "--convergence", "0.5")
    assert code == 0
    err = capsys.readouterr().err
    assert "warning" in err and "nearer than the nearest surface" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "out" / "box_sbs.png").exists()


def test_settings_validation():
    assert parse_convergence("INF") == "inf" and parse_convergence("2.50") == "2.5"
    with pytest.raises(SettingsError, match="convergence"):
        parse_convergence("near")
    with pytest.raises(SettingsError, match="layout"):
        StereoSettings(layout="sideways").validate()
    s = StereoSettings.from_dict(StereoSettings(layout="tb", baseline=0.3, quilt="4X2").to_dict())
    assert (s.layout, s.baseline, s.quilt, s.grid) == ("tb", 0.3, "4x2", (4, 2))


# -- the Python API and what the GUI needs ----------------------------------------------------------
def test_python_api_and_preview(tmp_path, rng):
    import depthstudio
    from depthstudio.render.stereo import render_stereo_preview

    rgb, z, k = box_scene(rng)
    result = depthstudio.render_stereo(rgb, (z, z > 0), tmp_path, StereoSettings(layout="anaglyph"), intrinsics=k,
                                       stem="api")
    assert result["picture"].shape == (H, W, 3)
    assert [p.name for p in result["files"]] == ["api_anaglyph.png"]
    assert result["rig"].convergence is not None and WALL_Z > result["rig"].convergence > BOX_Z
    preview = render_stereo_preview(rgb, (z, z > 0), StereoSettings(layout="sbs"), max_side=100, intrinsics=k)
    assert max(preview.shape[:2]) == 100 and preview.shape[1] / preview.shape[0] == pytest.approx(2 * W / H, rel=0.05)


def test_cli_and_api_with_a_model(tmp_path, photo_and_depth, tiny_onnx, capsys):
    """Without --depth the model runs (a tiny random one here: it exercises the path, not quality)."""
    import depthstudio

    photo, _ = photo_and_depth
    assert cli("stereo", photo, "-o", tmp_path / "m", "--model", tiny_onnx, "--input-size", "56",
               "--layout", "tb-half") == 0, capsys.readouterr().err
    assert (tmp_path / "m" / "box_tb-half.png").exists()
    result = depthstudio.render_stereo(photo, settings=StereoSettings(layout="cross"), model=str(tiny_onnx))
    assert result["picture"].shape == (H, 2 * W, 3) and result["files"] == []


def test_live_updates_reuse_the_prepared_layers(rng):
    """A GUI slider: a smaller baseline or another layout reuses the layers; a wider one prepares again."""
    from dataclasses import replace

    rgb, z, k = box_scene(rng)
    settings = StereoSettings(baseline=0.3, convergence="inf")
    with StereoRenderer(rgb, (z, z > 0), settings, intrinsics=k) as stereo:
        wide = red_centroid(stereo.eyes()[0]) - red_centroid(stereo.eyes()[1])
        stereo.update(replace(settings, baseline=0.1, layout="anaglyph"))
        assert stereo.preparations == 1 and stereo.rig.baseline == 0.1
        narrow = red_centroid(stereo.eyes()[0]) - red_centroid(stereo.eyes()[1])
        assert narrow == pytest.approx(wide / 3, abs=1.0)
        assert stereo.compose().shape == (H, W, 3)
        warnings = stereo.update(replace(settings, baseline=0.6, convergence="1"))
        assert stereo.preparations == 2 and warnings and "nearer" in warnings[0]
        with pytest.raises(SettingsError, match="eye size"):
            stereo.update(replace(settings, render=ParallaxSettings(size=(80, 60))))


def test_video_eyes_need_no_mipmaps(rng):
    """The video effect's scene skips texture mipmaps (a sideways move sees the layers at the
    photo's scale): its eyes are the photo renderer's, mipmaps or not."""
    from depthstudio.render.gl import offscreen_context
    from depthstudio.render.parallax import prepare_layers
    from depthstudio.render.scene import OffscreenRenderer, Scene
    from depthstudio.render.stereo import StereoTrack, plan_rig

    rgb, z, k = box_scene(rng)
    settings = StereoSettings(baseline=0.2, convergence="3")
    rig, _ = plan_rig(settings, z, z > 0, k)
    prepared = prepare_layers(rgb, z, z > 0, k, settings.render, (W, H), path=StereoTrack(rig))
    ctx = offscreen_context()
    eyes = {}
    for mipmaps in (True, False):
        with Scene(ctx, prepared.layers, mipmaps=mipmaps) as scene, OffscreenRenderer(ctx, (W, H)) as target:
            eyes[mipmaps] = [target.render(scene, pose, k) for pose in (rig.left, rig.right)]
    for with_mipmaps, without in zip(eyes[True], eyes[False]):
        assert psnr(with_mipmaps, without) > 45
    assert psnr(eyes[False][0], eyes[False][1]) < 30  # two different eyes
