"""Video: a streaming writer (PyAV) shared by every effect that exports video.

Import from ``depthstudio.video.writer``; PyAV is imported only when a writer is opened.
"""
from __future__ import annotations

from depthstudio.video.writer import VIDEO_SUFFIXES, VideoWriter, even_size, read_video, supported_suffix, write_video

__all__ = ["VIDEO_SUFFIXES", "VideoWriter", "even_size", "read_video", "supported_suffix", "write_video"]
