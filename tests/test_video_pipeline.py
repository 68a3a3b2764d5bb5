"""The video pipeline end to end: outputs decode back with the source's frames, rate, timing,
size and audio; 16-bit depth round-trips; cancel and errors leave no files. Synthetic clips only."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from depthstudio.errors import DepthStudioError, SettingsError
from depthstudio.jobs import Cancelled, Job
from depthstudio.video.decode import probe
from depthstudio.video.depthsource import DepthVideoSource
from depthstudio.video.pipeline import VideoSettings, output_paths, process_video
from depthstudio.video.synthetic import scene_frames, write_clip
from depthstudio.video.writer import VideoWriter

av = pytest.importorskip("av")


W, H, N = 96, 64, 20
NTSC = Fraction(30000, 1001)


def decode_back(path):
    """What a player sees: video frames (count, pts, size, rate) and audio (codec, duration)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        out = {
            "codec": video.codec_context.name, "pix_fmt": video.codec_context.pix_fmt,
            "size": (video.codec_context.width, video.codec_context.height), "rate": video.average_rate,
            "time_base": video.time_base, "audio": None,
        }
        frames = list(container.decode(video))
        out["frames"] = len(frames)
        out["times"] = [float(f.pts * f.time_base) for f in frames]
        out["first"] = frames[0]
        out["arrays"] = frames
    with av.open(str(path)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            packets = [p for p in container.demux(stream) if p.size]
            end = max(float((p.pts + p.duration) * p.time_base) for p in packets)
            out["audio"] = {"codec": stream.codec_context.name, "end": end, "rate": stream.codec_context.sample_rate}
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An NTSC-rate clip with stereo AAC audio (frames: textured boxes panning past a wall)."""
    path = tmp_path_factory.mktemp("clips") / "pan.mp4"
    return write_clip(path, (rgb for rgb, _ in scene_frames(W, H, N, seed=4)), fps=NTSC)


@pytest.fixture(scope="module")
def estimator(tiny_onnx):
    from depthstudio.models.estimator import load_estimator

    return load_estimator(str(tiny_onnx), "onnx", input_size=70)


def no_leftovers(folder, expected):
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(expected), f"unexpected files: {names}"


def test_depth_outputs_match_the_source(tmp_path, clip, estimator):
    source = decode_back(clip)
    result = process_video(clip, tmp_path, VideoSettings(batch_size=3), estimator)
    assert result.frames == N
    depth16, preview, meta = (result.outputs[k] for k in ("depth16", "preview", "meta"))
    assert (depth16.name, preview.name, meta.name) == ("pan_depth.mkv", "pan_depth.mp4", "pan_depth.json")
    no_leftovers(tmp_path, [depth16.name, preview.name, meta.name])

    for path in (depth16, preview):
        out = decode_back(path)
        assert out["frames"] == N
        assert out["size"] == (W, H)
        assert out["rate"] == NTSC
        # same timestamps (Matroska rounds to milliseconds and may shift all by the audio's priming)
        shift = out["times"][0] - source["times"][0]
        assert np.allclose(np.array(out["times"]) - shift, source["times"], atol=1.5e-3)
        assert abs(shift) < 0.05
        assert out["audio"]["codec"] == "aac" and out["audio"]["rate"] == 44100
        assert out["audio"]["end"] == pytest.approx(source["audio"]["end"], abs=0.03)

    lossless = decode_back(depth16)
    assert lossless["codec"] == "ffv1" and lossless["pix_fmt"] == "gray16le"
    values = lossless["first"].to_ndarray(format="gray16le")
    assert values.dtype == np.uint16 and values.max() > 30000 and len(np.unique(values)) > 256  # real 16-bit
    mp4 = decode_back(preview)
    assert mp4["codec"] == "h264" and mp4["time_base"] == source["time_base"]
    info = json.loads(meta.read_text())
    assert info["frames"] == N and info["kind"] == "disparity" and info["model_id"] == estimator.model_id


def test_requested_size_gray_side_by_side_and_no_audio(tmp_path, clip, estimator):
    settings = VideoSettings(size=(64, 40), preview="gray", side_by_side=True, audio=False, lossless=False)
    result = process_video(clip, tmp_path / "x.mp4", settings, estimator)
    assert set(result.outputs) == {"preview", "meta"}
    out = decode_back(result.outputs["preview"])
    assert out["size"] == (128, 40) and out["frames"] == N and out["audio"] is None
    rgb = out["first"].to_ndarray(format="rgb24")
    right = rgb[:, 64:].astype(int)
    assert np.abs(right[..., 0] - right[..., 1]).max() <= 8  # grayscale depth on the right
    assert np.abs(rgb[:, :64, 0].astype(int) - rgb[:, :64, 1]).max() > 40  # the colour source on the left


def test_max_frames_trims_video_and_audio(tmp_path, clip, estimator):
    result = process_video(clip, tmp_path, VideoSettings(max_frames=7, preview="none"), estimator)
    out = decode_back(result.outputs["depth16"])
    assert out["frames"] == 7
    assert out["audio"]["end"] == pytest.approx(7 / float(NTSC), abs=0.06)


def metric_depth_video(folder, frames):
    """A clip, and its true metric depth as the pipeline's own 16-bit format + sidecar."""
    near, far = 0.5, 20.0
    clip_path = folder / "scene.mp4"
    depth_path = folder / "scene_truth.mkv"
    truths = []
    with VideoWriter(depth_path, fps=24, size=(W, H)) as dv:
        def pictures():
            for rgb, disp in scene_frames(W, H, 8, seed=9):
                z = (1.0 / (disp * 2.0)).astype(np.float32)  # metres, 0.5 .. 5
                truths.append(z)
                v = (1.0 / z - 1.0 / far) / (1.0 / near - 1.0 / far)
                dv.write(np.clip(np.round(v * 65535), 1, 65535).astype(np.uint16))
                yield rgb
        write_clip(clip_path, pictures(), fps=24, audio=False)
    (folder / "scene_truth.json").write_text(json.dumps({"kind": "metric", "near": near, "far": far}))
    return clip_path, depth_path, truths


@pytest.mark.parametrize("stabilize, tolerance", [(False, 1e-3), (True, 1e-2)])
def test_metric_depth_round_trips_through_the_16_bit_stream(tmp_path, stabilize, tolerance):
    clip_path, depth_path, truths = metric_depth_video(tmp_path, 8)
    source = DepthVideoSource(depth_path)
    assert source.kind == "metric"
    out_dir = tmp_path / "out"
    settings = VideoSettings(preview="none")
    if not stabilize:
        settings.stabilize = None
    result = process_video(clip_path, out_dir, settings, source)
    source.close()
    meta = json.loads(result.outputs["meta"].read_text())
    assert meta["kind"] == "metric" and meta["near"] < 0.5 and meta["far"] > 5
    with av.open(str(result.outputs["depth16"])) as container:
        for frame, truth in zip(container.decode(video=0), truths):
            v = frame.to_ndarray(format="gray16le").astype(np.float64) / 65535.0
            z = 1.0 / (1.0 / meta["far"] + v * (1.0 / meta["near"] - 1.0 / meta["far"]))
            # true depth in, true depth out (metres): exactly without stabilisation, and the
            # stabiliser keeps a steady metric scale
            assert np.median(np.abs(z - truth) / truth) < tolerance


def test_depth_video_shorter_than_the_clip_is_an_input_error(tmp_path, clip):
    short = tmp_path / "short.mkv"
    with VideoWriter(short, fps=24, size=(W, H)) as video:
        for _ in range(3):
            video.write(np.full((H, W), 30000, np.uint16))
    source = DepthVideoSource(short)
    with pytest.raises(DepthStudioError, match="only 3 frames"):
        process_video(clip, tmp_path / "out", VideoSettings(), source)
    source.close()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_cancel_leaves_no_output(tmp_path, clip, estimator):
    def progress(job):
        assert job.total == N
        if job.done == 4:
            job.cancel()

    with pytest.raises(Cancelled):
        process_video(clip, tmp_path, VideoSettings(batch_size=2), estimator, job=Job(listener=progress))
    no_leftovers(tmp_path, [])


def test_an_error_mid_clip_leaves_no_output(tmp_path, clip, estimator):
    seen = []

    def on_frame(index, images):
        seen.append(sorted(images))
        if index == 5:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        process_video(clip, tmp_path, VideoSettings(), estimator, on_frame=on_frame)
    assert seen[0] == ["depth16", "preview"]
    no_leftovers(tmp_path, [])


def test_pcm_audio_is_copied(tmp_path):
    clip = write_clip(tmp_path / "pcm.mov", (rgb for rgb, _ in scene_frames(64, 48, 6)), fps=24, audio_codec="pcm_s16le")
    truth_dir = tmp_path / "d"
    truth_dir.mkdir()
    depth = truth_dir / "d.mkv"
    with VideoWriter(depth, fps=24, size=(64, 48)) as video:
        for _, disp in scene_frames(64, 48, 6):
            video.write(np.round(disp * 65535).astype(np.uint16))
    source = DepthVideoSource(depth)
    result = process_video(clip, tmp_path / "out", VideoSettings(), source)
    source.close()
    for path in (result.outputs["preview"], result.outputs["depth16"]):
        assert decode_back(path)["audio"]["codec"] == "pcm_s16le"


@pytest.mark.parametrize("out, expected", [
    ("folder", {"depth16": "clip_depth.mkv", "preview": "clip_depth.mp4", "meta": "clip_depth.json"}),
    ("a.mkv", {"depth16": "a.mkv", "preview": "a.mp4", "meta": "a.json"}),
    ("b.mp4", {"depth16": "b.mkv", "preview": "b.mp4", "meta": "b.json"}),
    ("c.webm", {"depth16": "c.mkv", "preview": "c.webm", "meta": "c.json"}),
])
def test_output_names(tmp_path, out, expected):
    paths = output_paths(tmp_path / "clip.mov", tmp_path / out, VideoSettings())
    assert {k: p.name for k, p in paths.items()} == expected
    assert output_paths("clip.mov", tmp_path, VideoSettings(effect="dof"))["effect"].name == "clip_dof.mp4"
    with pytest.raises(SettingsError, match="16-bit"):
        output_paths("clip.mov", tmp_path / "x.mkv", VideoSettings(effect="parallax"))


def test_probe_reports_what_the_pipeline_keeps(clip):
    info = probe(clip)
    assert (info.width, info.height, info.fps, info.frames) == (W, H, NTSC, N)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.duration == pytest.approx(N / float(NTSC), abs=0.05)
