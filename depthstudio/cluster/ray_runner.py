"""Run a batch (``depthstudio.batch.BatchWork`` over ``Item``s) on a Ray cluster.

An actor pool: every actor holds one copy of the work object and loads its model once; items
(photos, or whole clips) go to whichever actor has a free slot. The actors call the very same
``BatchWork.__call__`` the local executor calls, so the files are the same bytes.

- ``address``: None starts a local Ray runtime on this machine; "auto", "HOST:PORT" or
  "ray://HOST:PORT" connect to a running cluster. Inputs and outputs must be on a path every node
  sees (a shared file system).
- A bad item is reported with its message and the others go on. When the process running an item
  dies (a node lost, out of memory, killed), the item goes back in the queue for another worker
  (at most ``MAX_ATTEMPTS`` times) and the dead actor is replaced; an item whose files were all
  written before its worker died is not run again.
- One tqdm bar for the whole batch (items done, wherever they ran).
- Ctrl-C (KeyboardInterrupt) or a cancelled ``job`` kills the actors; temporary files they were
  writing are removed; finished files stay (every write is atomic), so a re-run resumes.

Ray is imported lazily; without it ``RayMissing`` (a DepthStudioError) says how to install it.
"""
from __future__ import annotations

import logging
import math
import os
import re
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from depthstudio.batch import BatchReport, BatchWork, Item, remove_partial_files, run_item
from depthstudio.errors import DepthStudioError, SettingsError
from depthstudio.settings import Settings, setting

log = logging.getLogger(__name__)

#: How many times an item is started before it is reported as failed when its workers keep dying.
MAX_ATTEMPTS = 3
#: Items queued on one actor at a time: one running, one waiting, so the next is never late.
SLOTS = 2
#: Seconds without a single worker ready before the driver says what it is waiting for.
PLACEMENT_WARNING_S = 60.0
#: Environment variable the actors set so the model's thread pool matches their CPU share.
THREADS_ENV = "DEPTHSTUDIO_THREADS"

_ADDRESS = re.compile(r"^(auto|local|ray://.+|\[?[A-Za-z0-9_.:-]+\]?:\d{1,5})$")


class RayMissing(DepthStudioError):
    """--ray was asked for but Ray is not installed."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayMissing("--ray needs Ray, which is not installed: pip install 'depthstudio[ray]'") from None
    return ray


@dataclass
class RaySettings(Settings):
    """Where a batch runs on Ray, and the actor pool's shape. Never saved with the outputs (they do not depend on it)."""

    section = "ray"

    address: str | None = setting(None, label="Ray cluster", flag="", auto="a local Ray runtime on this machine",
                                  help="auto, HOST:PORT or ray://HOST:PORT")
    ray_workers: int | None = setting(None, label="Ray workers", minimum=1, metavar="N",
                                      auto="the cluster's CPUs (or GPUs with --ray-gpus-per-worker)",
                                      help="actors in the pool, each loading the model once")
    ray_gpus_per_worker: float = setting(0.0, label="GPUs per Ray worker", minimum=0.0, metavar="G",
                                         help="GPUs per actor, may be fractional (0.5: two actors per GPU); 0: CPU only")
    ray_cpus_per_worker: float = setting(1.0, label="CPUs per Ray worker", minimum=0.0, min_exclusive=True, metavar="C",
                                         help="CPU cores per actor (its inference threads)", advanced=True)

    def check(self) -> None:
        if self.address is not None and not is_address(self.address):
            raise SettingsError(f"--ray ADDRESS must be auto, HOST:PORT or ray://HOST:PORT, got {self.address!r}")

    @property
    def local(self) -> bool:
        return self.address in (None, "local")


def is_address(text: str) -> bool:
    return bool(_ADDRESS.match(text))


# -- the actor ------------------------------------------------------------------------------------
class _BatchWorker:
    """One per worker process: the work object with its model loaded once."""

    def __init__(self, work: BatchWork, threads: int):
        os.environ.setdefault(THREADS_ENV, str(max(1, threads)))
        self.work = work
        self.error: str | None = None
        try:
            work.prepare()
        except DepthStudioError as exc:  # reported by ready(): one error for the whole batch
            self.error = str(exc)

    def ready(self) -> tuple[str | None, str]:
        import depthstudio

        return self.error, depthstudio.__version__

    def run(self, item: Item) -> tuple[bool, str | None]:
        return run_item(self.work, item)

    def pid(self) -> int:
        return os.getpid()


@dataclass
class _Actor:
    handle: Any  # a Ray actor handle
    ready_ref: Any  # the ObjectRef of ready(); None once ready
    busy: int = 0
    alive: bool = True


# -- the driver -----------------------------------------------------------------------------------
def connect(options: RaySettings):
    """ray.init for ``options``; returns (ray, started_here)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    kwargs = dict(logging_level=logging.WARNING, log_to_driver=True)
    try:
        if options.local:
            ray.init(address="local", include_dashboard=False, **kwargs)
        else:
            ray.init(address=options.address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a local Ray runtime" if options.local else f"the Ray cluster at {options.address}"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DepthStudioError(f"cannot start {where}: {first[:300]}") from None
    return ray, True


def pool_size(ray, options: RaySettings, items: int) -> int:
    if options.ray_workers is not None:
        return max(1, min(options.ray_workers, items))
    resources = ray.cluster_resources()
    if options.ray_gpus_per_worker > 0:
        n = int(resources.get("GPU", 0) // options.ray_gpus_per_worker)
        if n < 1:
            raise DepthStudioError(
                f"--ray-gpus-per-worker {options.ray_gpus_per_worker}: the cluster has {resources.get('GPU', 0):g} GPU(s)")
    else:
        n = int(resources.get("CPU", 1) // options.ray_cpus_per_worker)
    return max(1, min(n, items))


def run_on_ray(work: BatchWork, items: list[Item], report: BatchReport, options: RaySettings | None = None,
               desc: str = "", job=None, overwrite: bool = False) -> BatchReport:
    """Run ``items`` through an actor pool on Ray; fills ``report`` as the local executor would."""
    options = (options or RaySettings()).validate()
    if not items:
        return report
    ray, started = connect(options)
    try:
        _Pool(ray, work, items, report, options, desc, job, overwrite).run()
    finally:
        if started:
            ray.shutdown()
    return report


class _Pool:
    def __init__(self, ray, work, items, report, options, desc, job, overwrite):
        self.ray, self.work, self.items, self.report = ray, work, list(items), report
        self.options, self.desc, self.job, self.overwrite = options, desc, job, overwrite
        self.queue: deque[Item] = deque(self.items)
        self.attempts: dict[Item, int] = {}
        self.inflight: dict[object, tuple[_Actor, Item]] = {}
        self.actors: list[_Actor] = []
        self.first_ready: float | None = None
        self.size = pool_size(ray, options, len(self.items))
        self.replacements = 2 * self.size + 2
        threads = max(1, math.floor(options.ray_cpus_per_worker))
        self.actor_class = ray.remote(_BatchWorker).options(
            num_cpus=options.ray_cpus_per_worker, num_gpus=options.ray_gpus_per_worker or None,
            max_concurrency=SLOTS, max_restarts=0, max_task_retries=0)
        self.threads = threads
        self.work_ref = ray.put(work)

    def spawn(self) -> None:
        handle = self.actor_class.remote(self.work_ref, self.threads)
        self.actors.append(_Actor(handle, handle.ready.remote()))

    def run(self) -> None:
        from depthstudio.batch import progress

        self.bar = bar = progress(range(len(self.items)), total=len(self.items), desc=self.desc, unit=self.work.unit)
        try:
            started, warned = time.monotonic(), False
            for _ in range(self.size):
                self.spawn()
            while self.queue or self.inflight:
                if self.job is not None:
                    self.job.check()
                self.dispatch()
                if not warned and not self.inflight and time.monotonic() - started > PLACEMENT_WARNING_S:
                    warned = True
                    o = self.options
                    print(f"depthstudio: waiting for Ray to place {self.size} worker(s) of {o.ray_cpus_per_worker:g} CPU"
                          f"{f' and {o.ray_gpus_per_worker:g} GPU' if o.ray_gpus_per_worker else ''} each; the cluster has "
                          f"{_resources(self.ray)}", file=sys.stderr)
                waiting = list(self.inflight) + [a.ready_ref for a in self.actors if a.alive and a.ready_ref is not None]
                if not waiting:
                    raise DepthStudioError(f"every Ray worker was lost; {len(self.queue)} item(s) not done")
                done, _ = self.ray.wait(waiting, num_returns=1, timeout=0.5)
                for ref in done:
                    self.collect(ref)
        except BaseException:
            self.cancel()
            raise
        finally:
            bar.close()
            self.shutdown()
        if self.first_ready is not None:
            end = time.monotonic()
            running = max(1e-9, end - self.first_ready)
            log.info("ray: %d items in %.1f s on %d workers; first worker ready after %.1f s; %.3f items/s once running",
                     len(self.items), end - started, self.size, self.first_ready - started, len(self.items) / running)

    def dispatch(self) -> None:
        for actor in self.actors:
            while actor.alive and actor.ready_ref is None and actor.busy < SLOTS and self.queue:
                item = self.queue.popleft()
                self.attempts[item] = self.attempts.get(item, 0) + 1
                self.inflight[actor.handle.run.remote(item)] = (actor, item)
                actor.busy += 1

    def collect(self, ref) -> None:
        ray = self.ray
        if ref not in self.inflight:  # an actor became ready (or could not start)
            actor = next(a for a in self.actors if a.ready_ref == ref)
            try:
                error, version = ray.get(ref)
            except ray.exceptions.RayError as exc:
                self.lost(actor, f"a Ray worker could not start: {_first_line(exc)}")
                return
            if error:
                raise DepthStudioError(error)  # the model cannot load: one error for the batch
            import depthstudio

            if version != depthstudio.__version__:
                raise DepthStudioError(f"a Ray worker runs depthstudio {version}, this machine {depthstudio.__version__}: "
                                       "install the same version on every node")
            actor.ready_ref = None
            if self.first_ready is None:
                self.first_ready = time.monotonic()
            return
        actor, item = self.inflight.pop(ref)
        actor.busy -= 1
        try:
            ok, message = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # not a user error: a bug, reported for this item
            ok, message = False, f"{item.path}: {_first_line(exc.cause if hasattr(exc, 'cause') else exc)}"
        except ray.exceptions.RayError as exc:  # the worker (or its node) died: run it elsewhere
            self.retry(item, exc)
            self.lost(actor, _first_line(exc))
            return
        self.finish(item, ok, message)

    def finish(self, item: Item, ok: bool, message: str | None) -> None:
        if ok:
            self.report.done.append(Path(item.path))
            if message:
                self.bar.write(message, file=sys.stdout)
        else:
            self.report.fail(item.path, message or "failed")
        self.bar.update(1)
        if self.job is not None:
            self.job.advance()

    def retry(self, item: Item, exc) -> None:
        if not self.overwrite and self.work.is_done(item):
            # every file was written before the worker died: done, not written twice
            self.finish(item, True, None)
            return
        if self.attempts.get(item, 0) >= MAX_ATTEMPTS:
            message = (f"{item.path}: its Ray worker died {MAX_ATTEMPTS} times while running it (out of memory?): "
                       f"{_first_line(exc)}")
            self.finish(item, False, message)
            return
        self.report.retried += 1
        self.queue.appendleft(item)

    def lost(self, actor: _Actor, why: str) -> None:
        if not actor.alive:
            return
        actor.alive = False
        log.warning("a Ray worker was lost (%s); its items go to the others", why)
        try:
            self.ray.kill(actor.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        if self.replacements > 0 and self.queue:
            self.replacements -= 1
            self.spawn()

    def cancel(self) -> None:
        """Kill every actor, wait for them to be gone, remove the temporary files they left."""
        for actor in self.actors:
            try:
                self.ray.kill(actor.handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        refs = list(self.inflight)
        deadline = time.monotonic() + 10.0
        while refs and time.monotonic() < deadline:
            try:
                done, refs = self.ray.wait(refs, num_returns=len(refs), timeout=0.5)
            except Exception:  # noqa: BLE001
                break
        self.actors = []

    def shutdown(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor.handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        # temporary files of workers that died mid-write (the shared folder is only ours to tidy).
        # A killed actor is reported dead before its process has gone, and may still create a
        # temporary file for a moment: sweep until two passes a second apart find nothing.
        quiet, deadline = 0, time.monotonic() + 10.0
        while quiet < 2 and time.monotonic() < deadline:
            quiet = 0 if remove_partial_files(self.work, self.items) else quiet + 1
            if quiet < 2:
                time.sleep(0.5)


def _resources(ray) -> str:
    try:
        r = ray.cluster_resources()
    except Exception:  # noqa: BLE001
        return "unknown resources"
    return f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU"


def _first_line(exc) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
