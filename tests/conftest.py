"""Shared fixtures. Tests that use ../shared skip when it is absent (a user's clone has none)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"



def _qt_platform() -> str:
    """xcb (a real X server: Xvfb, with a window manager from scripts/xvfb-session.sh) when a display and
    Qt's X11 libraries are there; Qt's offscreen platform otherwise."""
    if not os.environ.get("DISPLAY"):
        return "offscreen"
    try:
        from depthstudio.app import missing_xcb_libraries
    except ImportError:
        return "offscreen"
    return "offscreen" if missing_xcb_libraries() else "xcb"


os.environ.setdefault("QT_QPA_PLATFORM", _qt_platform())
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "DESIGN.md").exists():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def room_scene(shared_dir) -> Path:
    room = shared_dir / "scenes" / "room"
    if not (room / "depth.npy").exists():
        pytest.skip("../shared/scenes/room is not present")
    return room


@pytest.fixture(scope="session")
def sample_photos(shared_dir) -> list[Path]:
    photos = sorted((shared_dir / "samples" / "photos").glob("*.jpg"))
    if not photos:
        pytest.skip("../shared/samples/photos is empty")
    return photos


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Depth Anything in the transformers layout (config.json + model.safetensors)."""
    pytest.importorskip("transformers")
    from depthstudio.models.random_init import make_random_model

    return make_random_model(tmp_path_factory.mktemp("models") / "tiny-da")


@pytest.fixture(scope="session")
def tiny_metric_model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    from depthstudio.models.random_init import make_random_model

    return make_random_model(tmp_path_factory.mktemp("models") / "tiny-da-metric", kind="metric")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model exported to ONNX with dynamic batch, height and width."""
    from depthstudio.models.onnx_export import export_onnx

    return export_onnx(tiny_model_dir, tmp_path_factory.mktemp("onnx") / "tiny-da.onnx")
