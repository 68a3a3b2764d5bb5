"""Finding a model's weights: a catalogue name (Hugging Face cache / hub), a local .onnx, a local folder.

Weights are downloaded through huggingface_hub into its cache on first use and reused offline
afterwards. Without a route to the hub and without a cached copy the user gets one message that
names the model, the files it needs, and how to point ``--model`` at local files.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from depthstudio.errors import ModelError
from depthstudio.models.catalogue import DEFAULT_MODEL, HF_FILES, ModelInfo, get_model_info


@dataclass
class ModelSource:
    """Weights on local disk, ready for a backend."""

    format: str  # "onnx" | "transformers"
    path: Path  # the .onnx file, or the folder with config.json + model.safetensors
    model_id: str
    info: ModelInfo | None = None


def local_source(model: str) -> ModelSource:
    path = Path(model).expanduser()
    if not path.exists():
        from depthstudio.models.catalogue import CATALOGUE

        raise ModelError(
            f"model {model!r} is neither a catalogue name ({', '.join(CATALOGUE)}) nor an existing "
            f".onnx file or transformers folder"
        )
    if path.is_file():
        if path.suffix.lower() != ".onnx":
            raise ModelError(
                f"{path}: unsupported model file; use a .onnx file or a transformers folder with "
                f"{' + '.join(HF_FILES)} (pickled .bin/.pt weights are never loaded)"
            )
        return ModelSource("onnx", path, model_id=path.name)
    if (path / "config.json").exists() and (path / "model.safetensors").exists():
        return ModelSource("transformers", path, model_id=path.name)
    onnx_files = sorted(path.glob("*.onnx")) or sorted(path.glob("onnx/model.onnx"))
    if onnx_files:
        return ModelSource("onnx", onnx_files[0], model_id=path.name)
    found = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
    raise ModelError(
        f"{path}: not a model folder (found {found}); it needs {' + '.join(HF_FILES)} "
        f"(transformers layout) or a .onnx file"
    )


def _offline_message(info: ModelInfo, backend: str, reason: str) -> str:
    files = ", ".join(info.files_needed(backend))
    return (
        f"model {info.name!r} is not in the local cache and cannot be downloaded ({reason}). "
        f"It needs: {files}. Download them on a machine with internet access "
        f"(`depthstudio models download {info.name}`), or point --model at a local .onnx file or "
        f"a folder with {' + '.join(HF_FILES)}."
    )


def _hub_errors() -> tuple[type[BaseException], ...]:
    import huggingface_hub.errors as e

    names = ("LocalEntryNotFoundError", "OfflineModeIsEnabled", "RepositoryNotFoundError", "EntryNotFoundError",
             "RevisionNotFoundError", "HfHubHTTPError")
    errors: list[type[BaseException]] = [OSError, ValueError]
    errors += [getattr(e, n) for n in names if hasattr(e, n)]
    try:
        import requests

        errors.append(requests.exceptions.RequestException)
    except ImportError:
        pass
    try:
        import httpx

        errors.append(httpx.HTTPError)
    except ImportError:
        pass
    return tuple(errors)


def _reason(exc: BaseException) -> str:
    """The root cause of a failed download, in a few words."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "offline mode is on: HF_HUB_OFFLINE=1"
    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    text = " ".join(chain).lower()
    if any(word in text for word in ("name or service", "resolve", "connect", "network is unreachable", "timed out")):
        return "no route to the Hugging Face hub"
    first = str(exc).strip().splitlines()
    return first[0][:160] if first else type(exc).__name__


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached, in a few words, or None when a connection opens.

    huggingface_hub retries a failing download with back-off for about 25 s; a user with no network
    should hear so at once.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "offline mode is on: HF_HUB_OFFLINE=1"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # behind a proxy a direct connection says nothing; let huggingface_hub try
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout).close()
    except OSError:
        return f"no route to {url.hostname}"
    return None


def _download(repo: str, filenames: list[str], info: ModelInfo, backend: str, progress: bool = True) -> Path:
    """Each file from the cache if there, else from the hub; returns the folder holding them."""
    import logging

    from huggingface_hub import hf_hub_download

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    errors = _hub_errors()
    folder = None
    for filename in filenames:
        try:
            local = hf_hub_download(repo, filename, local_files_only=True)
        except errors:
            unreachable = _hub_unreachable()
            if unreachable:
                raise ModelError(_offline_message(info, backend, unreachable)) from None
            try:
                local = hf_hub_download(repo, filename)
            except errors as exc:
                raise ModelError(_offline_message(info, backend, _reason(exc))) from None
        path = Path(local)
        folder = path.parent if folder is None else folder
        if filename.endswith(".onnx"):
            return path
    assert folder is not None
    return folder


def catalogue_source(name: str, backend: str) -> ModelSource:
    """Weights for a catalogue model, from the cache or the hub."""
    info = get_model_info(name)
    if backend == "onnx" and not info.onnx_repo:
        raise ModelError(
            f"model {name!r} has no published ONNX weights; use --backend torch, or make an ONNX file "
            f"with `depthstudio models export-onnx {name} -o {name}.onnx` and pass it with --model"
        )
    if backend == "torch" and not info.hf_repo:
        raise ModelError(f"model {name!r} is published as ONNX only ({info.onnx_repo}); use --backend onnx (or auto)")
    if backend == "onnx":
        assert info.onnx_repo is not None
        path = _download(info.onnx_repo, [info.onnx_files["fp32"]], info, backend)
        return ModelSource("onnx", path, model_id=name, info=info)
    assert info.hf_repo is not None
    folder = _download(info.hf_repo, list(HF_FILES), info, backend)
    return ModelSource("transformers", folder, model_id=name, info=info)


def resolve(model: str | None, backend: str = "auto") -> ModelSource:
    """Turn ``--model`` and ``--backend`` into weights on disk."""
    from depthstudio.models.catalogue import CATALOGUE

    model = str(model or DEFAULT_MODEL)
    if model not in CATALOGUE:
        return local_source(model)
    info = get_model_info(model)
    if backend == "auto":
        backend = "onnx" if info.onnx_repo else "torch"
    return catalogue_source(model, backend)


def cached_status(info: ModelInfo) -> dict:
    """Which of a model's files are in the local cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    status = {}
    for backend in info.backends:
        repo, files = (info.onnx_repo, [info.onnx_files["fp32"]]) if backend == "onnx" else (info.hf_repo, list(HF_FILES))
        status[backend] = all(isinstance(try_to_load_from_cache(str(repo), f), str) for f in files)
    return status


def model_kind_from_folder(folder: Path) -> str:
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") == "depth_pro":
        return "metric"
    return "metric" if config.get("depth_estimation_type") == "metric" else "disparity"
