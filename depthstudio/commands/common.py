"""Pieces every batch command shares: input expansion, progress, per-input error handling."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from depthstudio.batch import BatchReport, progress  # noqa: F401 - re-exported for the commands
from depthstudio.errors import DepthStudioError
from depthstudio.io.images import find_inputs, output_stems
from depthstudio.jobs import Cancelled, Job, check


def expand_inputs(items: list[str]) -> list[Path]:
    paths = find_inputs(items)
    if not paths:
        raise DepthStudioError("no input images found in: " + " ".join(items))
    return paths


def run_batch(paths: list[Path], work: Callable[[Path], str | None], desc: str, job: Job | None = None) -> BatchReport:
    """Run ``work`` on every path; a DepthStudioError fails that input only, a cancel stops the batch.

    ``work`` returns "skipped" when the outputs were already complete.
    """
    report = BatchReport()
    for path in progress(paths, total=len(paths), desc=desc):
        check(job)
        try:
            result = work(path)
        except Cancelled:
            raise
        except DepthStudioError as exc:
            message = str(exc)
            report.fail(path, message if str(path) in message else f"{path}: {message}")
            continue
        (report.skipped if result == "skipped" else report.done).append(path)
    return report


# -- executors: here, or a Ray cluster (--ray) ----------------------------------------------------
def add_ray_flags(p) -> None:
    """--ray [ADDRESS] and the pool's shape (RaySettings): any batch command can take them."""
    from depthstudio.cluster.ray_runner import RaySettings
    from depthstudio.settings import add_flags

    g = add_flags(p, RaySettings, title="cluster (Ray; pip install 'depthstudio[ray]')")
    g.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run the batch on Ray: without ADDRESS a local runtime on this machine; auto, HOST:PORT or "
                        "ray://HOST:PORT connect to a cluster (inputs and outputs on a path every node sees)")


def ray_settings_from_args(args):
    """RaySettings from the flags, or None without --ray; fails early (one message) when Ray is missing.

    ``--ray`` takes an optional ADDRESS, so ``--ray photo.jpg`` would swallow an input: a value that
    is not an address but names an existing file goes back to the inputs.
    """
    from depthstudio.cluster.ray_runner import RaySettings, import_ray, is_address
    from depthstudio.errors import SettingsError
    from depthstudio.settings import from_args, given

    address = getattr(args, "ray", None)
    if address is None:
        if given(RaySettings, args):
            raise SettingsError("--ray-workers, --ray-gpus-per-worker and --ray-cpus-per-worker apply to --ray")
        return None
    if not is_address(address) and Path(address).exists() and hasattr(args, "inputs"):
        args.inputs.append(address)
        address = "local"
    settings = from_args(RaySettings, args).replace(address=None if address == "local" else address).validate()
    import_ray()
    return settings


def execute(work, items, report: BatchReport, ray, desc: str, overwrite: bool = False, job=None) -> BatchReport:
    """Run a batch's items here (``ray`` None) or on Ray (``ray``: RaySettings): the same work object either way."""
    if ray is None:
        from depthstudio.batch import run_local

        return run_local(work, items, report, desc=desc, job=job)
    from depthstudio.cluster.ray_runner import run_on_ray

    return run_on_ray(work, items, report, ray, desc=desc, job=job, overwrite=overwrite)


# -- inputs and outputs: local paths or object-store URLs (fsspec) ---------------------------------
def path_or_url(text: str):
    """argparse type for -o: a Path, or the URL as given (Path would fold s3:// into s3:/)."""
    from depthstudio.io.remote import is_url

    return text if is_url(text) else Path(text)


def expand_items(inputs: list[str], output) -> tuple[list, str]:
    """(Items, output folder) for a batch of photos: local files, folders and .txt lists, or URLs of
    files and prefixes (s3://bucket/photos/); the output folder is made when it is local."""
    from depthstudio.batch import Item
    from depthstudio.io.atomic import ensure_dir
    from depthstudio.io.images import IMAGE_SUFFIXES
    from depthstudio.io.remote import is_url, list_inputs, output_stems_any

    urls = [i for i in inputs if is_url(str(i))]
    local = [i for i in inputs if not is_url(str(i))]
    paths: list = find_inputs(local) if local else []
    if urls:
        paths += list_inputs(urls, IMAGE_SUFFIXES)
    if not paths:
        raise DepthStudioError("no input images found in: " + " ".join(map(str, inputs)))
    out = output if is_url(str(output)) else str(ensure_dir(output))
    stems = output_stems_any(paths) if urls else output_stems(paths)
    return [Item(str(p), stems[p], out) for p in paths], out


def for_urls(work, items):
    """``work`` itself, or wrapped to download inputs and upload outputs when some are URLs."""
    from depthstudio.io.remote import RemoteWork, is_url

    if any(is_url(i.path) or is_url(i.out) for i in items):
        return RemoteWork(work)
    return work
