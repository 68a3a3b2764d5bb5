"""Pieces every batch command shares: input expansion, progress, per-input error handling."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from depthstudio.batch import BatchReport, output_stems, progress  # noqa: F401 - re-exported for the commands
from depthstudio.errors import DepthStudioError
from depthstudio.io.images import find_inputs


def expand_inputs(items: list[str]) -> list[Path]:
    paths = find_inputs(items)
    if not paths:
        raise DepthStudioError("no input images found in: " + " ".join(items))
    return paths


def run_batch(paths: list[Path], work: Callable[[Path], str | None], desc: str) -> BatchReport:
    """Run ``work`` on every path; a DepthStudioError fails that input only.

    ``work`` returns "skipped" when the outputs were already complete.
    """
    report = BatchReport()
    for path in progress(paths, total=len(paths), desc=desc):
        try:
            result = work(path)
        except DepthStudioError as exc:
            message = str(exc)
            report.fail(path, message if str(path) in message else f"{path}: {message}")
            continue
        (report.skipped if result == "skipped" else report.done).append(path)
    return report


# -- executors: here, or a Ray cluster (--ray) ----------------------------------------------------
def add_ray_flags(p) -> None:
    """--ray [ADDRESS], --ray-workers N, --ray-gpus-per-worker G: any batch command can take them."""
    g = p.add_argument_group("cluster (Ray; pip install 'depthstudio[ray]')")
    g.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the batch on Ray: without ADDRESS a local runtime on this machine; auto, HOST:PORT or "
                        "ray://HOST:PORT connect to a cluster (inputs and outputs on a path every node sees)")
    g.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="actors, each loading the model once (default: the cluster's CPUs, or GPUs with "
                        "--ray-gpus-per-worker)")
    g.add_argument("--ray-gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="GPUs per actor, may be fractional, e.g. 0.5 runs two per GPU (default 0: CPU)")


def ray_options_from_args(args):
    """RayOptions from the flags, or None without --ray; fails early (one message) when Ray is missing.

    ``--ray`` takes an optional ADDRESS, so ``--ray photo.jpg`` would swallow an input: a value that
    is not an address but names an existing file goes back to the inputs.
    """
    from depthstudio.errors import SettingsError

    address = getattr(args, "ray", None)
    workers, gpus = getattr(args, "ray_workers", None), getattr(args, "ray_gpus_per_worker", 0.0)
    if address is None:
        if workers is not None or gpus:
            raise SettingsError("--ray-workers and --ray-gpus-per-worker apply to --ray")
        return None
    from depthstudio.cluster.ray_runner import RayOptions, import_ray, is_address

    if not is_address(address) and Path(address).exists() and hasattr(args, "inputs"):
        args.inputs.append(address)
        address = "local"
    options = RayOptions(None if address == "local" else address, workers, gpus or 0.0).validate()
    import_ray()
    return options


def execute(work, items, report: BatchReport, options, desc: str, overwrite: bool = False, job=None) -> BatchReport:
    """Run a batch's items here (``options`` None) or on Ray: the same work object either way."""
    if options is None:
        from depthstudio.batch import run_local

        return run_local(work, items, report, desc=desc, job=job)
    from depthstudio.cluster.ray_runner import run_on_ray

    return run_on_ray(work, items, report, options, desc=desc, job=job, overwrite=overwrite)
