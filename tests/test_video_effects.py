"""Effects on moving footage, judged on synthetic clips with true depth (no model)."""
from __future__ import annotations

import numpy as np
import pytest

from depthstudio.render.dof import DofSettings
from depthstudio.video.depthsource import DepthVideoSource
from depthstudio.video.effects import PointTracker, VideoDofSettings, VideoParallaxSettings, pull_distance
from depthstudio.video.pipeline import VideoSettings, process_video
from depthstudio.video.synthetic import scene_frames, write_clip
from depthstudio.video.writer import VideoWriter, read_video

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")


W, H, N = 128, 80, 10


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """A clip, its true depth as a 16-bit depth video, and the frames themselves."""
    folder = tmp_path_factory.mktemp("footage")
    frames = list(scene_frames(W, H, N, seed=11))
    clip = write_clip(folder / "clip.mp4", (rgb for rgb, _ in frames), fps=24)
    depth = folder / "clip_depth.mkv"
    with VideoWriter(depth, fps=24, size=(W, H)) as video:
        for _, disp in frames:
            video.write(np.round(disp * 65535).astype(np.uint16))
    return clip, depth, frames


def sharpness(rgb: np.ndarray, mask: np.ndarray) -> float:
    grey = rgb.astype(np.float32).mean(axis=2)
    lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    return float(lap[mask].mean())


def test_pull_distance_eases_between_keys_in_inverse_distance():
    keys = [(1.0, 2.0), (3.0, 8.0)]
    assert pull_distance(keys, 0.0) == 2.0 and pull_distance(keys, 5.0) == 8.0
    mid = pull_distance(keys, 2.0)
    assert mid == pytest.approx(1.0 / (0.5 / 2.0 + 0.5 / 8.0))  # halfway in 1/distance
    times = np.linspace(1, 3, 21)
    d = [pull_distance(keys, t) for t in times]
    assert np.all(np.diff(d) >= 0)
    assert d[1] - d[0] < d[11] - d[10]  # eased: slow start


def test_tracker_follows_a_moving_texture(rng):
    texture = (rng.random((120, 200, 3)) * 255).astype(np.uint8)
    texture = cv2.GaussianBlur(texture, (5, 5), 1.0)
    tracker = PointTracker((80.0, 60.0))
    for k in range(8):
        x, y = tracker.update(np.roll(texture, (k, 2 * k), axis=(0, 1)))
    assert (x, y) == pytest.approx((80.0 + 14.0, 60.0 + 7.0), abs=0.5)


def test_dof_keeps_the_focused_plane_sharp_and_blurs_the_rest(tmp_path, footage):
    clip, depth, frames = footage
    source = DepthVideoSource(depth)
    # without stabilisation relative depth is normalised per frame: the wall (the smallest
    # disparity) maps to far = 10, the nearest box to near = 1
    lens = DofSettings(f_number=1.4, focus_distance=10.0)
    settings = VideoSettings(effect="dof", dof=VideoDofSettings(lens=lens), stabilize=None)
    result = process_video(clip, tmp_path / "dof.mp4", settings, source)
    source.close()
    out, rate = read_video(result.outputs["effect"])
    src, _ = read_video(clip)
    assert len(out) == N and out[0].shape == (H, W, 3) and rate == pytest.approx(24)
    rgb, disp = frames[N // 2]
    wall = disp < 0.11
    near = disp > 0.5
    wall[: 4], wall[-4:], near[:4], near[-4:] = False, False, False, False
    k = N // 2
    assert sharpness(out[k], wall) > 0.6 * sharpness(src[k], wall)  # in focus: kept
    assert sharpness(out[k], near) < 0.5 * sharpness(src[k], near)  # out of focus: blurred


def test_dof_focus_pull_and_tracked_focus_follow_time_and_picture(footage):
    from depthstudio.geometry.depth import disparity_to_depth
    from depthstudio.video.decode import VideoFrame, probe
    from depthstudio.video.effects import DofEffect

    clip, depth, frames = footage
    info = probe(clip)
    pull = DofEffect(VideoSettings(effect="dof", dof=VideoDofSettings(pull=[(0.0, 1.5), (N / 24, 6.0)])), {}, info, (W, H))
    rgb, disp = frames[0]
    z = disparity_to_depth(disp, 1.0, 10.0)
    first = pull.focus_distance(VideoFrame(0, rgb, 0, 0.0), z, disp > 0)[0]
    last = pull.focus_distance(VideoFrame(N - 1, rgb, N - 1, N / 24), z, disp > 0)[0]
    assert (first, last) == pytest.approx((1.5, 6.0))

    # track the nearest box: the focus distance stays on it while it moves across the picture
    rgb0, disp0 = frames[0]
    ys, xs = np.nonzero(disp0 == disp0.max())
    point = (float(xs.mean()), float(ys.mean()))
    lens = DofSettings(focus_point=point)
    tracked = DofEffect(VideoSettings(effect="dof", dof=VideoDofSettings(lens=lens, focus_smoothing=0.0)), {}, info, (W, H))
    box_distance = 1.0 / (1.0 / 10.0 + disp0.max() * (1.0 - 1.0 / 10.0))
    for i, (rgb, disp) in enumerate(frames):
        z = disparity_to_depth(disp, 1.0, 10.0)
        d, p = tracked.focus_distance(VideoFrame(i, rgb, i, i / 24), z, disp > 0)
        assert d == pytest.approx(box_distance, rel=0.02), f"frame {i}: focus left the box at {p}"
    assert p[0] != pytest.approx(point[0], abs=2.0)  # the point really moved with the box


@pytest.mark.gl
def test_parallax_on_footage(tmp_path, footage):
    from depthstudio.render.gl import RenderError, create_context

    try:
        create_context().release()
    except RenderError as exc:
        pytest.skip(str(exc))
    from depthstudio.render.camera_path import PathSettings

    clip, depth, frames = footage
    source = DepthVideoSource(depth)
    settings = VideoSettings(effect="parallax", parallax=VideoParallaxSettings(path=PathSettings("zoom-in", intensity=2.0)))
    result = process_video(clip, tmp_path / "p.mp4", settings, source)
    source.close()
    out, rate = read_video(result.outputs["effect"])
    src, _ = read_video(clip)
    assert len(out) == N and out[0].shape == (H, W, 3) and rate == pytest.approx(24)
    with av.open(str(result.outputs["effect"])) as c:
        assert len(c.streams.audio) == 1
    diff = [np.abs(o.astype(int) - s.astype(int)).mean() for o, s in zip(out, src)]
    assert diff[0] < 6  # the move starts at the original camera
    assert diff[-1] > 2 * diff[0] + 4  # and ends somewhere else (zoomed in)
    assert np.all(np.diff(diff) > -3)  # growing steadily over the clip
