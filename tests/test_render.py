"""The OpenGL scene: headless rendering reproduces the photo and moves points as a pinhole camera does."""
from __future__ import annotations

import numpy as np
import pytest

from depthstudio.errors import SettingsError
from depthstudio.geometry.camera import Intrinsics
from depthstudio.geometry.unproject import project
from depthstudio.render.camera_path import CameraPose, projection_matrix
from depthstudio.render.gl import RenderError, create_context
from depthstudio.render.layers import MeshLayer, edge_zone, grid_layer, sharpen_edges

pytest.importorskip("moderngl")
pytestmark = pytest.mark.gl


W, H = 160, 120
WALL_Z, BOX_Z = 4.0, 2.0
BOX = (slice(40, 80), slice(50, 100))  # rows, cols of the near square


def synthetic_scene(rng):
    """A square at 2 m in front of a textured wall at 4 m, with blurred (model-like) depth edges."""
    k = Intrinsics.from_fov(W, H, 60.0)
    noise = rng.integers(0, 256, (H // 4, W // 4, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(noise, 4, 0), 4, 1)
    rgb[..., 0] //= 3  # the wall is blue/green-ish...
    box = rgb[BOX].astype(np.int32)
    rgb[BOX] = np.stack([200 + box[..., 0] % 56, box[..., 1] // 5, box[..., 2] // 5], -1)  # ...the square red
    z = np.full((H, W), WALL_Z, np.float32)
    z[BOX] = BOX_Z
    return rgb.astype(np.uint8), z, k


@pytest.fixture(scope="module")
def ctx():
    from depthstudio.render.gl import offscreen_context

    return offscreen_context()


def psnr(a, b, mask=None):
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = diff[mask].mean() if mask is not None else diff.mean()
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def render(ctx, layers, k, pose, size=None, background=(1.0, 0.0, 1.0)):
    from depthstudio.render.scene import OffscreenRenderer, Scene

    with Scene(ctx, layers) as scene, OffscreenRenderer(ctx, size or (k.width, k.height)) as target:
        return target.render(scene, pose, k, background)


def test_neutral_camera_reproduces_the_photo(ctx, rng):
    rgb, z, k = synthetic_scene(rng)
    valid = z > 0
    zone = edge_zone(z, valid)
    layer = grid_layer(sharpen_edges(z, valid, zone), valid, k, rgb, cut=zone)
    out = render(ctx, [layer], k, CameraPose())
    assert out.shape == (H, W, 3)
    # Away from the cut edges (where the foreground layer alone leaves a one-pixel gap) it is exact.
    import cv2

    inside = ~cv2.dilate(zone.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert psnr(out, rgb, inside) >= 40
    assert psnr(out, rgb) >= 20


def test_geometry_mesh_draws_the_same(ctx, rng):
    """A geometry DepthMesh (what the GUI shows) goes through the same scene."""
    from depthstudio.geometry.mesh import MeshSettings, depth_mesh

    rgb, z, k = synthetic_scene(rng)
    mesh = depth_mesh(z, z > 0, k, rgb, MeshSettings(edge_cut=0.04))
    out = render(ctx, [MeshLayer.from_mesh(mesh)], k, CameraPose())
    valid = np.zeros((H, W), bool)
    valid[1:-1, 1:-1] = True  # the geometry mesh stops at pixel centres: a half-pixel border
    valid[39:41, :] = valid[79:81, :] = valid[:, 49:51] = valid[:, 99:101] = False  # and at the cut edges
    assert psnr(out, rgb, valid) >= 30


def test_sideways_camera_moves_near_points_more(ctx, rng):
    """Tracked points move by -fx * tx / z pixels, as the pinhole model predicts."""
    rgb = np.full((H, W, 3), 90, np.uint8)
    z = np.full((H, W), WALL_Z, np.float32)
    z[BOX] = BOX_Z
    rgb[BOX] = (60, 60, 60)
    markers = {"near": (60, 75, BOX_Z), "far": (20, 25, WALL_Z), "far2": (100, 130, WALL_Z)}
    for r, c, _ in markers.values():
        rgb[r - 2:r + 2, c - 2:c + 2] = (255, 255, 255)
    k = Intrinsics.from_fov(W, H, 60.0)
    layer = grid_layer(z, z > 0, k, rgb, cut=edge_zone(z, z > 0))
    tx = 0.12
    out = render(ctx, [layer], k, CameraPose(position=np.array([tx, 0.0, 0.0])), background=(0.35, 0.35, 0.35))
    bright = out.min(axis=2) > 200
    for name, (r, c, depth) in markers.items():
        expected_x = c - k.fx * tx / depth  # marker centre is at column c (pixels c-2..c+1)
        window = bright[r - 6:r + 6, :]
        rows, cols = np.nonzero(window)
        near_expected = np.abs(cols + 0.5 - expected_x) < 6
        assert near_expected.sum() >= 8, f"marker {name} not found near x={expected_x:.1f}"
        found_x = (cols[near_expected] + 0.5).mean()
        assert found_x == pytest.approx(expected_x, abs=0.5), name
    near_shift = k.fx * tx / BOX_Z
    far_shift = k.fx * tx / WALL_Z
    assert near_shift == pytest.approx(2 * far_shift)


def test_projection_matches_pinhole(rng):
    k = Intrinsics(150.0, 140.0, 70.3, 66.1, W, H)
    pts = np.stack([rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50), -rng.uniform(1, 5, 50)], 1)
    m = projection_matrix(k, 0.1, 100.0)
    clip = np.c_[pts, np.ones(50)] @ m.T
    ndc = clip[:, :2] / clip[:, 3:4]
    pixels = np.stack([(ndc[:, 0] + 1) * W / 2, (1 - ndc[:, 1]) * H / 2], 1)
    assert np.allclose(pixels, project(pts, k), atol=1e-6)


def test_zoom_and_lens_shift_keep_steady_point(rng):
    k = Intrinsics.from_fov(W, H, 50.0)
    pose = CameraPose(position=np.array([0.3, -0.2, -0.5]), zoom=1.0, steady_depth=3.0)
    moved = pose.intrinsics(k)
    steady_point = np.array([[0.0, 0.0, -3.0]])
    cam = (np.c_[steady_point, [1.0]] @ pose.view_matrix().T)[:, :3]
    assert np.allclose(project(cam, moved), [[k.cx, k.cy]], atol=1e-9)


def test_no_context_is_a_clear_error():
    with pytest.raises(RenderError, match="OpenGL"):
        create_context(backend="no-such-backend")


def test_bad_render_size(ctx):
    from depthstudio.render.scene import OffscreenRenderer

    with pytest.raises(SettingsError, match="positive"):
        OffscreenRenderer(ctx, (0, 100))


def test_edge_zone_finds_ramps_not_slopes():
    """A blurred depth step is an edge; a steep but smooth floor is not."""
    import cv2

    disparity = np.full((H, W), 0.25, np.float32)
    disparity[:, W // 2:] = 0.5
    ramp = 1.0 / cv2.blur(disparity, (5, 1))  # a 5-pixel ramp in disparity, as a depth model makes it
    zone = edge_zone(ramp, ramp > 0)
    assert zone[:, W // 2 - 3:W // 2 + 3].all()
    assert not zone[:, :W // 2 - 8].any() and not zone[:, W // 2 + 8:].any()
    sharp = sharpen_edges(ramp, ramp > 0, zone)
    assert set(np.unique(np.round(sharp[5], 3))) <= {2.0, 4.0}
    # A floor plane: disparity linear in the row, depth from 1.5 m to 60 m.
    rows = np.arange(H, dtype=np.float32)[:, None]
    floor = np.repeat(1.0 / (1 / 60 + (rows / H) * (1 / 1.5 - 1 / 60)), W, 1).astype(np.float32)
    assert not edge_zone(floor, floor > 0).any()


def test_draw_into_another_framebuffer(ctx, rng):
    """What a GUI viewport gets (its own framebuffer, its own size) is the exported frame, scaled."""
    from depthstudio.render.camera_path import PathSettings
    from depthstudio.render.parallax import ParallaxRenderer, ParallaxSettings

    rgb, z, k = synthetic_scene(rng)
    settings = ParallaxSettings(path=PathSettings(preset="swing"), samples=0)
    with ParallaxRenderer(rgb, (z, z > 0), settings, intrinsics=k, ctx=ctx) as renderer:
        exported = renderer.frame(0.2)
        widget = ctx.simple_framebuffer((W, H))
        renderer.draw(0.2, widget, size=(W, H))
        shown = np.frombuffer(widget.read(components=3, alignment=1), np.uint8).reshape(H, W, 3)[::-1]
        widget.release()
    assert np.abs(shown.astype(int) - exported.astype(int)).mean() < 1.0
