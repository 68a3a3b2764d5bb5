"""`depthstudio video` as a user runs it: outputs, batches, and bad input (one clear line, exit 1,
no traceback, no half-written file)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from depthstudio.cli import main
from depthstudio.video.decode import iter_frames, probe
from depthstudio.video.synthetic import scene_frames, write_clip
from depthstudio.video.writer import VideoWriter

av = pytest.importorskip("av")


W, H, N = 80, 48, 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("cli") / "walk.mp4", (rgb for rgb, _ in scene_frames(W, H, N)), fps=25)


def model_args(tiny_onnx):
    return ["--model", str(tiny_onnx), "--input-size", "56"]


def files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_depth_video_from_the_command_line(tmp_path, clip, tiny_onnx, capsys):
    code = main(["video", str(clip), "-o", str(tmp_path), "--smoothing", "0.8", *model_args(tiny_onnx)])
    assert code == 0
    assert files(tmp_path) == ["walk_depth.json", "walk_depth.mkv", "walk_depth.mp4", "walk_depth.settings.json"]
    assert "8 frames" in capsys.readouterr().out
    meta = json.loads((tmp_path / "walk_depth.json").read_text())
    assert meta["stabilize"]["smoothing"] == 0.8
    info = probe(tmp_path / "walk_depth.mp4")
    assert (info.width, info.height, info.frames, float(info.fps), info.has_audio) == (W, H, N, 25.0, True)


def test_dof_with_a_depth_video_and_a_focus_pull(tmp_path, clip):
    depth = tmp_path / "walk_depth.mkv"
    with VideoWriter(depth, fps=25, size=(W, H)) as video:
        for _, disp in scene_frames(W, H, N):
            video.write(np.round(disp * 65535).astype(np.uint16))
    out = tmp_path / "focus.webm"
    code = main(["video", str(clip), "-o", str(out), "--effect", "dof", "--depth", str(depth),
                 "--focus-pull", "0:1.5,0.3:8", "--f-number", "2"])
    assert code == 0
    info = probe(out)
    assert (info.codec, info.frames, info.width) == ("vp9", N, W)
    assert info.has_audio and info.audio_codec == "opus" or not info.has_audio  # AAC does not go into WebM


def bad_inputs(folder, clip):
    text = folder / "notes.mp4"
    text.write_text("not a video at all")
    empty = folder / "empty.mov"
    empty.write_bytes(b"")
    header_only = folder / "header_only.mkv"
    with av.open(str(header_only), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = 32, 32, "gray"
        c.start_encoding()
    sound = folder / "sound.wav"
    with av.open(str(sound), "w") as c:
        a = c.add_stream("pcm_s16le", rate=8000)
        a.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in [*a.encode(frame), *a.encode(None)]:
            c.mux(p)
    truncated = folder / "truncated.mp4"
    data = clip.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    return {
        text: "not a video file",
        empty: "empty",
        header_only: "no video frames",
        sound: "no video stream",
        folder / "missing.mp4": "not found",
        truncated: "",  # the moov atom is at the end: nothing readable
    }


def test_bad_inputs_get_one_clear_line(tmp_path, clip, tiny_onnx, capsys):
    out = tmp_path / "out"
    for path, words in bad_inputs(tmp_path, clip).items():
        code = main(["video", str(path), "-o", str(out), *model_args(tiny_onnx)])
        err = capsys.readouterr().err
        assert code == 1, path
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if line.startswith("depthstudio: error:")]
        assert len(lines) == 1 and path.name in lines[0] and words in lines[0], err
    assert not out.exists() or files(out) == []


def test_one_bad_input_does_not_stop_the_others(tmp_path, clip, tiny_onnx, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    code = main(["video", str(bad), str(clip), "-o", str(tmp_path / "out"), "--no-lossless", *model_args(tiny_onnx)])
    assert code == 1
    assert files(tmp_path / "out") == ["walk_depth.json", "walk_depth.mp4", "walk_depth.settings.json"]
    captured = capsys.readouterr()
    assert "bad.mp4" in captured.err and "1 videos done, 1 failed" in captured.out


def test_unwritable_output(tmp_path, clip, tiny_onnx, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    code = main(["video", str(clip), "-o", str(blocker / "out.mp4"), *model_args(tiny_onnx)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "cannot create output folder" in err
    code = main(["video", str(clip), "-o", str(tmp_path / "x.avi"), *model_args(tiny_onnx)])
    err = capsys.readouterr().err
    assert code == 1 and "x.avi" in err and ".mp4" in err


def test_bad_settings_are_refused_before_work(tmp_path, clip, tiny_onnx, capsys):
    for extra, words in ((["--smoothing", "3"], "smoothing"), (["--size", "1x1"], "size"),
                         (["--effect", "dof", "--focus-point", "5000,10"], "outside")):
        code = main(["video", str(clip), "-o", str(tmp_path), *extra, *model_args(tiny_onnx)])
        err = capsys.readouterr().err
        assert code == 1 and words in err and "Traceback" not in err, err
    assert files(tmp_path) == []


def test_decoding_resizes_and_rotates(tmp_path):
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        s.set_display_rotation(90)  # a phone held upright
        for i in range(3):
            img = np.zeros((32, 64, 3), np.uint8)
            img[:, :8] = 255  # a white bar on the left of the stored picture
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (32, 64, 90)
    frames = list(iter_frames(path))
    assert len(frames) == 3 and frames[0].rgb.shape == (64, 32, 3)
    # rotated 90 degrees counter-clockwise: the stored left edge is now the bottom
    assert frames[0].rgb[-4:].mean() > 200 and frames[0].rgb[:8].mean() < 60
    small = list(iter_frames(path, size=(16, 32)))
    assert small[0].rgb.shape == (32, 16, 3)


def test_the_settings_file_reproduces_the_depth_video(tmp_path, clip, tiny_onnx):
    from depthstudio.video.depthsource import DepthVideoSource

    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["video", str(clip), "-o", str(first), "--smoothing", "0.3", "--max-frames", "5", "--no-audio",
                 *model_args(tiny_onnx)]) == 0
    saved = json.loads((first / "walk_depth.settings.json").read_text())
    assert saved["command"] == "video" and saved["settings"]["video"]["stabilize"]["smoothing"] == 0.3
    assert main(["video", str(clip), "-o", str(second), "--settings", str(first / "walk_depth.settings.json")]) == 0
    frames = []
    for folder in (first, second):
        source = DepthVideoSource(folder / "walk_depth.mkv")
        frames.append([source.preprocess(np.zeros((H, W, 3), np.uint8))[1] for _ in range(5)])
        source.close()
    assert all(np.array_equal(a, b) for a, b in zip(*frames))
