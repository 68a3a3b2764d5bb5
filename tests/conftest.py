"""Shared fixtures. Tests that use ../shared skip when it is absent (a user's clone has none)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
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
