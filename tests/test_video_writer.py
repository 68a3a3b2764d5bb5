"""The streaming video writer: formats, sizes, frame rates, 16-bit FFV1, audio copy, atomic output."""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

from depthstudio.errors import OutputError, SettingsError
from depthstudio.video.writer import VideoWriter, even_size, read_video, write_video

av = pytest.importorskip("av")


H, W = 96, 128


def moving_frames(n, h=H, w=W):
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        frame = np.empty((h, w, 3), np.uint8)
        frame[..., 0] = (xx * 2 + i * 6) % 256
        frame[..., 1] = yy * 2
        frame[..., 2] = np.where((xx // 16 + yy // 16 + i) % 2, 40, 220)
        yield frame


@pytest.mark.parametrize("ext, tolerance", [("mp4", 6.0), ("webm", 6.0), ("gif", 12.0), ("mkv", 0.0)])
def test_formats_round_trip(tmp_path, ext, tolerance):
    out = tmp_path / f"clip.{ext}"
    fps = 25 if ext == "gif" else 24
    write_video(out, moving_frames(12), fps=fps, size=(W, H))
    frames, rate = read_video(out)
    assert len(frames) == 12
    assert frames[0].shape == (H, W, 3)
    assert rate == pytest.approx(fps, rel=0.02)
    expected = list(moving_frames(12))
    for i in (0, 6, 11):
        err = np.abs(frames[i].astype(np.float64) - expected[i]).mean()
        assert err <= tolerance, f"frame {i} of {ext} differs by {err:.2f} on average"
    assert not [p for p in tmp_path.iterdir() if p.name != out.name], "temporary files left behind"


def test_mp4_is_h264_yuv420p(tmp_path):
    out = write_video(tmp_path / "a.mp4", moving_frames(3), fps=30)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"


def test_webm_is_vp9(tmp_path):
    out = write_video(tmp_path / "a.webm", moving_frames(3), fps=30)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"


def test_quality_changes_file_size(tmp_path):
    small = write_video(tmp_path / "low.mp4", moving_frames(10), fps=30, quality=10)
    large = write_video(tmp_path / "high.mp4", moving_frames(10), fps=30, quality=100)
    assert os.path.getsize(large) > 1.5 * os.path.getsize(small)


def test_odd_size_is_padded_for_420(tmp_path):
    frames = list(moving_frames(4, h=51, w=77))
    with VideoWriter(tmp_path / "odd.mp4", fps=10) as video:
        for f in frames:
            video.write(f)
    assert video.size == (78, 52)
    decoded, _ = read_video(tmp_path / "odd.mp4")
    assert decoded[0].shape == (52, 78, 3)
    assert np.abs(decoded[2][:51, :77].astype(int) - frames[2]).mean() < 6


def test_gif_palette_keeps_colours_and_does_not_shimmer(tmp_path):
    # A still image repeated: ordered dithering gives identical frames (no temporal noise).
    rng = np.random.default_rng(0)
    still = np.repeat(np.repeat(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), 8, 0), 8, 1)
    still[:, :32] = [250, 20, 30]  # a saturated red must survive the palette
    write_video(tmp_path / "still.gif", [still] * 4, fps=20)
    frames, rate = read_video(tmp_path / "still.gif")
    assert rate == pytest.approx(20, rel=0.02)
    assert len(frames) == 4
    assert all(np.array_equal(frames[0], f) for f in frames[1:])
    assert np.abs(frames[0][:, :32].astype(int) - [250, 20, 30]).mean() < 6
    assert np.abs(frames[0].astype(int) - still).mean() < 10


def test_gray16_ffv1_is_lossless(tmp_path):
    depth = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 7 % 65536).astype(np.uint16)
    with VideoWriter(tmp_path / "depth.mkv", fps=12) as video:
        for i in range(3):
            video.write(depth + i)
    with av.open(str(tmp_path / "depth.mkv")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "ffv1"
        decoded = [f.to_ndarray() for f in container.decode(stream)]
    assert len(decoded) == 3
    assert decoded[1].dtype == np.uint16
    assert np.array_equal(decoded[1], depth + 1)


def test_time_base_and_audio_copy(tmp_path):
    # A source clip with audio: its audio stream is copied next to the new video.
    source = tmp_path / "source.mp4"
    with av.open(str(source), "w") as container:
        audio = container.add_stream("aac", rate=44100)
        t = np.arange(44100) / 44100.0
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        for start in range(0, 44100, 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, start:start + 1024].copy(), format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)

    out = tmp_path / "with_audio.mp4"
    with av.open(str(source)) as src, VideoWriter(out, fps=25, time_base=Fraction(1, 90000)) as video:
        audio_out = video.add_stream_from_template(src.streams.audio[0])
        for i, frame in enumerate(moving_frames(25)):
            video.write(frame, pts=i * 3600)
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is None:
                continue
            packet.stream = audio_out
            video.mux(packet)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        assert container.streams.audio[0].codec_context.name == "aac"
        frames = list(container.decode(video=0))
        assert len(frames) == 25
        assert float(frames[-1].pts * frames[-1].time_base) == pytest.approx(24 / 25, abs=1e-3)


def test_error_inside_block_leaves_no_file(tmp_path):
    out = tmp_path / "broken.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(out, fps=30, size=(W, H)) as video:
            for i, frame in enumerate(moving_frames(5)):
                if i == 3:
                    raise KeyboardInterrupt
                video.write(frame)
    assert list(tmp_path.iterdir()) == []


def test_bad_settings(tmp_path):
    with pytest.raises(SettingsError, match="extension"):
        VideoWriter(tmp_path / "out.xyz", fps=30)
    with pytest.raises(SettingsError, match="positive"):
        VideoWriter(tmp_path / "out.mp4", fps=30, size=(0, 100))
    with pytest.raises(SettingsError, match="frame rate"):
        VideoWriter(tmp_path / "out.mp4", fps=0)
    with VideoWriter(tmp_path / "out.mp4", fps=30, size=(W, H)) as video:
        with pytest.raises(SettingsError, match="64x32"):
            video.write(np.zeros((32, 64, 3), np.uint8))
        video.write(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(SettingsError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mp4", fps=30):
            pass
    assert not (tmp_path / "empty.mp4").exists()
    assert even_size(1919, 1081) == (1918, 1080)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="locked"):
            VideoWriter(locked / "out.mp4", fps=30)
    finally:
        locked.chmod(0o700)


def test_output_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="file"):
        VideoWriter(tmp_path / "file" / "out.mp4", fps=30)
