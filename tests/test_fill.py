"""Revealed-area fill, scored as view synthesis against true views (issue 14).

Synthetic scenes (no ../shared needed) know what lies behind the foreground; the room's true views
(../shared/scenes/room/views) check the goals: disoccluded PSNR at least Telea's + 2 dB on the
lateral views and not below it on the dolly, visible PSNR within 1 dB of a forward splat.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from depthstudio.render.evaluate import box_scene, box_scene_view, forward_splat, frame_coverage, psnr, view_masks
from depthstudio.render.fill import FillMemory, FillSettings, reuse_fill

pytest.importorskip("cv2", reason="the fill needs OpenCV: pip install 'depthstudio[render]'")

REPO = Path(__file__).resolve().parents[1]


def _bench():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_fill
    finally:
        sys.path.pop(0)
    return bench_fill


# -- no GL -------------------------------------------------------------------------------------
def test_splat_of_the_unmoved_photo_is_the_photo():
    scene = box_scene(160, 90)
    image, covered = forward_splat(scene.rgb, scene.z, scene.z > 0, scene.intrinsics, [0, 0, 0])
    assert covered.all()
    assert np.array_equal(image, scene.rgb)


def test_masks_of_a_sideways_move():
    scene = box_scene(240, 135)
    position = [0.15, 0.0, 0.0]
    _, covered = forward_splat(scene.rgb, scene.z, scene.z > 0, scene.intrinsics, position)
    masks = view_masks(covered, frame_coverage(scene.z, scene.z > 0, scene.intrinsics, position))
    # Moving right, the view looks past the photo's right border, never its left one.
    assert masks.beyond[:, -3:].all() and not masks.beyond[:, :10].any()
    # The holes lie right of each box (what it hid), and are not beyond the frame.
    assert masks.holes.sum() > 100
    assert not (masks.holes & masks.beyond).any()
    cols = np.nonzero(masks.holes.any(axis=0))[0]
    right_edges = [c1 for _, (c0, c1), _, _ in scene.boxes]
    assert cols.min() >= min(right_edges) - 20
    assert not (masks.visible & masks.disoccluded).any()


def test_reuse_keeps_the_fill_where_nothing_changed_and_not_where_it_did():
    rng = np.random.default_rng(0)
    h, w = 60, 80
    rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    z = np.full((h, w), 5.0, np.float32)
    covered = np.zeros((h, w), bool)
    covered[:, 30:50] = True
    old = np.full((h, w, 3), 100, np.uint8)
    new = np.full((h, w, 3), 130, np.uint8)
    memory = FillMemory(rgb, z, old, covered, pad=0)
    noisy = np.clip(rgb + rng.normal(0, 1.5, rgb.shape), 0, 255).astype(np.uint8)
    kept, _ = reuse_fill(new, covered, noisy, z, memory, reach=4)
    assert (kept[covered] == 100).all(), "codec-like noise must not refresh the fill"
    changed = noisy.copy()
    changed[:, 40:] = 255 - changed[:, 40:]  # something moved on the right half
    mixed, memory2 = reuse_fill(new, covered, changed, z, memory, reach=4)
    assert (mixed[:, 30:34] == 100).all() and (mixed[:, 40:50] == 130).all()
    # The reference follows the picture where it changed, so a slow drift is caught once it adds up.
    assert np.array_equal(memory2.rgb[:, 45:], changed[:, 45:]) and np.array_equal(memory2.rgb[:, :30], rgb[:, :30])
    # Padding that grew by 2 pixels lines the memory up with the new arrays.
    padded = np.pad(noisy, ((2, 2), (2, 2), (0, 0)), mode="edge")
    zp = np.pad(z, 2, mode="edge")
    cp = np.pad(covered, 2)
    out, _ = reuse_fill(np.full(padded.shape, 130, np.uint8), cp, padded, zp, memory, reach=4, pad=2)
    inner = covered.copy()
    inner[:8] = inner[-8:] = False  # the new border rows were never seen: refreshed within reach
    assert (out[2:-2, 2:-2][inner] == 100).all()


def test_video_fill_inpaints_only_what_it_does_not_keep():
    """With a memory, fill_layer inpaints only the fill pixels whose surroundings changed: the kept
    ones are the previous frame's colours, the rest what a full inpainting gives there."""
    from depthstudio.render.fill import apply_reuse, fill_layer, inpaint_behind, reuse_plan
    from depthstudio.render.layers import edge_zone

    scene = box_scene(240, 135, seed=1)
    rgb, z = scene.rgb, scene.z.astype(np.float32)
    valid = z > 0
    zone = edge_zone(z, valid)
    _, first = fill_layer(z, valid, zone, rgb, scene.intrinsics, 24.0)
    changed = rgb.copy()
    changed[:, 150:] = 255 - changed[:, 150:]  # the right part of the picture changed
    _, second = fill_layer(z, valid, zone, changed, scene.intrinsics, 24.0, memory=first.memory)
    covered = second.band | second.ring
    plan = reuse_plan(covered, changed, z, first.memory, 24.0 + 16, 0)
    assert plan.keep.any() and (covered & ~plan.keep).any()
    # The full inpainting, then the reuse: what fill_layer gave before it skipped the kept pixels.
    full = inpaint_behind(changed, z, valid, second, 0.04, 4, reach=24.0)
    reference, _ = apply_reuse(full, covered, changed, z, plan, 0)
    ours = second.memory.texture
    assert np.array_equal(ours[plan.keep], first.memory.texture[plan.keep])
    fresh = covered & ~plan.keep
    assert np.abs(ours[fresh].astype(int) - reference[fresh].astype(int)).mean() < 2.0
    # Nothing to do: no inpainting at all.
    assert np.array_equal(inpaint_behind(changed, z, valid, second, 0.04, 4, reach=24.0, skip=covered), changed)


def test_fill_settings_validate():
    from depthstudio.errors import SettingsError

    FillSettings().validate()
    with pytest.raises(SettingsError, match="inpaint radius"):
        FillSettings(inpaint_radius=0).validate()


# -- GL ----------------------------------------------------------------------------------------
@pytest.mark.gl
@pytest.mark.parametrize("position", [(0.15, 0.0, 0.0), (-0.15, 0.0, 0.0), (0.1, 0.05, 0.0)])
def test_revealed_wall_comes_from_the_wall_not_the_boxes(position):
    """Two boxes before a striped wall whose hidden part is known: what a move reveals is wall,
    never box colour, and it is much closer to the true wall than Telea inpainting of a splat."""
    bench = _bench()
    scene = box_scene(480, 270, seed=0)
    truth = box_scene_view(scene, position)
    ours = bench.render_ours(scene.rgb, scene.z, scene.intrinsics, np.array(position))
    telea, _, covered = bench.render_telea(scene.rgb, scene.z, scene.intrinsics, np.array(position))
    masks = view_masks(covered, frame_coverage(scene.z, scene.z > 0, scene.intrinsics, position))
    assert masks.disoccluded.sum() > 1000
    assert psnr(ours, truth, masks.disoccluded) >= psnr(telea, truth, masks.disoccluded) + 2.0
    # Where the true view shows wall inside the holes (two pixels in from their edges: the
    # silhouettes' anti-aliasing; a hole behind the near box may show the far box), no pixel
    # comes near a box's colour.
    import cv2

    wall = np.ones(truth.shape[:2], bool)
    for _, _, _, colour in scene.boxes:
        wall &= np.abs(truth.astype(np.float32) - colour).max(axis=2) > 60
    inner = cv2.erode((masks.holes & wall).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert inner.sum() > 300
    pixels = ours[inner].astype(np.float32)
    for _, _, _, colour in scene.boxes:
        distance = np.abs(pixels - colour).max(axis=1)
        assert np.count_nonzero(distance <= 60) == 0, f"box colour {colour} in the revealed wall"
        assert np.median(distance) > 100


@pytest.mark.gl
def test_still_video_does_not_flicker():
    """A still shot with noise prepared frame by frame (as video parallax does): with the previous
    frame's fill reused, the revealed pixels hold still (< 0.5 grey levels a frame)."""
    pytest.importorskip("moderngl", reason="renders the frames with OpenGL")
    bench = _bench()
    still = bench.flicker(True, frames=4)
    fresh = bench.flicker(False, frames=4)
    assert still < 0.5
    assert still < 0.5 * fresh


@pytest.fixture(scope="module")
def room_views(room_scene):
    if not (room_scene / "views" / "views.json").exists():
        pytest.skip("../shared/scenes/room/views is not present")
    return _bench().score_scene(room_scene)


@pytest.mark.gl
def test_room_views_beat_telea(room_views):
    for name, row in room_views.items():
        margin = 0.0 if name == "dolly" else 2.0
        assert row["ours_disoccluded"] >= row["telea_disoccluded"] + margin, (name, row)
        assert row["ours_disoccluded"] > row["rubber_disoccluded"], (name, row)


@pytest.mark.gl
def test_room_views_visible_as_sharp_as_a_splat(room_views):
    for name, row in room_views.items():
        assert row["ours_visible"] >= row["splat_visible"] - 1.0, (name, row)


def test_room_views_file(room_scene):
    views = json.loads((room_scene / "views" / "views.json").read_text())
    assert {"right", "left"} <= set(views)
