"""Where depth comes from: a model, or depth files the user brings. One definition for every front end.

    source = DepthSource(ModelSettings(), DepthFileSettings(depth=Path("d/")))
    depth = source.depth_for(photo)     # the file paired with the photo, else the model's estimate

The model is loaded once per (model, backend, input size) and shared (models.estimator caches it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from depthstudio.depthmap import KINDS, DepthMap
from depthstudio.errors import InputError
from depthstudio.io.images import Photo, as_photo
from depthstudio.models.catalogue import DEFAULT_INPUT_SIZE, DEFAULT_MODEL
from depthstudio.settings import Settings, setting

BACKENDS = ("auto", "onnx", "torch")
#: ``--depth embedded``: the depth a phone stored inside each photo.
EMBEDDED = "embedded"


def is_prompt_model(model: str) -> bool:
    """Whether ``model`` (catalogue name or transformers folder) is Prompt Depth Anything, without loading it."""
    from depthstudio.models.catalogue import CATALOGUE

    info = CATALOGUE.get(str(model))
    if info is not None:
        return info.arch == "prompt-depth-anything"
    config = Path(model).expanduser() / "config.json"
    if config.is_file():
        import json

        try:
            return json.loads(config.read_text(encoding="utf-8")).get("model_type") == "prompt_depth_anything"
        except (OSError, ValueError, AttributeError):
            return False
    return False


@dataclass
class ModelSettings(Settings):
    """Which model estimates depth, and how."""

    section = "model"

    model: str = setting(DEFAULT_MODEL, label="Model", metavar="M",
                         help="catalogue name (depthstudio models list), a local .onnx file or a transformers folder")
    backend: str = setting("auto", label="Backend", choices=BACKENDS,
                           help="inference backend: ONNX Runtime (fast default) or PyTorch")
    input_size: int = setting(DEFAULT_INPUT_SIZE, label="Input size", unit="px", minimum=14, maximum=4096, step=14, metavar="N",
                              help="shorter side of the network input, rounded to a multiple of 14")

    def key(self) -> tuple:
        """What a cached depth map depends on."""
        return ("model", self.model, self.backend, self.input_size)


@dataclass
class DepthFileSettings(Settings):
    """Depth the user brings instead of a model's (phone depth, LiDAR, a render's Z pass)."""

    section = "depth"

    depth: Path | None = setting(None, label="Depth file", metavar="FILE|DIR", auto="run the model",
                                 help="bring your own depth (PNG 8/16-bit, EXR, TIFF, NPY); a folder pairs files "
                                      "by stem; 'embedded' reads the depth a phone stored in each photo (HEIC "
                                      "depth image, GDepth JPEG), which a Prompt Depth Anything --model upsamples. "
                                      "Otherwise no model runs.")
    depth_kind: str = setting("disparity", label="Depth kind", choices=KINDS,
                              help="what the depth file holds: disparity (larger = nearer) or metric (metres; "
                                   "integer PNG/TIFF in millimetres)")


class DepthSource:
    """Depth files when the user gave some, else the model (loaded on first use, once)."""

    def __init__(self, model: ModelSettings | None = None, files: DepthFileSettings | None = None):
        self.model = (model or ModelSettings()).validate()
        self.files = (files or DepthFileSettings()).validate()
        self._estimator = None

    @property
    def embedded(self) -> bool:
        """``--depth embedded``: the depth stored inside each photo (unless a file of that name exists)."""
        return self.files.depth is not None and str(self.files.depth) == EMBEDDED and not Path(self.files.depth).exists()

    @property
    def prompted(self) -> bool:
        """Embedded phone depth as the prompt of a Prompt Depth Anything model."""
        return self.embedded and is_prompt_model(self.model.model)

    @property
    def uses_model(self) -> bool:
        return self.files.depth is None or self.prompted

    def check_files(self) -> None:
        """A missing --depth file or folder is one error for the whole batch."""
        if self.embedded:
            return
        if self.files.depth is not None and not Path(self.files.depth).exists():
            if os.path.lexists(self.files.depth):  # a symlink that does not resolve: say why
                from depthstudio.io.files import check_input

                check_input(self.files.depth, "depth file")
            raise InputError(f"{self.files.depth}: depth file or folder not found (--depth)")

    def estimator(self):
        if self._estimator is None:
            from depthstudio.models.estimator import load_estimator

            m = self.model
            self._estimator = load_estimator(m.model, m.backend, m.input_size)
        return self._estimator

    def depth_file_for(self, image_path) -> Path:
        from depthstudio.geometry.depth import find_depth_file

        if self.embedded:
            return Path(image_path)
        assert self.files.depth is not None, "depth_file_for() is for sources with depth files"
        return find_depth_file(image_path, self.files.depth)

    def depth_for(self, photo: Photo | str | Path) -> DepthMap:
        """The DepthMap for one photo, at the photo's resolution."""
        photo = as_photo(photo)
        if self.embedded:
            from depthstudio.geometry.depth import fit_to_photo
            from depthstudio.io.phonedepth import read_embedded_depth

            if photo.path is None:
                raise InputError("--depth embedded needs photos read from files")
            embedded = read_embedded_depth(photo.path)
            if self.prompted:  # Prompt Depth Anything upsamples the phone's depth to the photo
                return self.estimator().predict(photo, prompt=embedded)
            return fit_to_photo(embedded, (photo.width, photo.height), str(photo.path))
        if self.files.depth is not None:
            from depthstudio.geometry.depth import read_depth_file

            path = self.depth_file_for(photo.path if photo.path else "image")
            return read_depth_file(path, self.files.depth_kind, size=(photo.width, photo.height))
        return self.estimator().predict(photo)

    def key(self, image_path=None) -> tuple:
        if self.embedded:
            return ("embedded", str(image_path), *(self.model.key() if self.prompted else ()))
        if self.files.depth is not None:
            return ("file", str(self.depth_file_for(image_path) if image_path else self.files.depth),
                    self.files.depth_kind)
        return self.model.key()
