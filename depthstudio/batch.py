"""Batches of independent items (photos, clips) and the executors that run them.

A batch command describes its per-item work as a ``BatchWork``: a small picklable object holding
only settings (dataclasses, strings, numbers) whose ``__call__(item)`` does everything for one
item and writes its files. The same object runs in this process (``run_local``) or in a pool of
Ray actors (``depthstudio.cluster.ray_runner.run_on_ray``), so the outputs are the same bytes
whichever executor ran them. The model behind a work object loads lazily, once per process.

    work = DepthWork(model=ModelChoice(...), exr=True)
    items = make_items(paths, out_dir)
    report = BatchReport()
    todo = split_done(work, items, report, overwrite=False)   # resume
    run_local(work, todo, report, desc="depth")
"""
from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depthstudio.errors import DepthStudioError
from depthstudio.jobs import Cancelled, advance, check


@dataclass(frozen=True)
class Item:
    """One unit of work: an input file, the stem its outputs are named by, and the output folder."""

    path: str
    stem: str
    out: str


def make_items(paths: list[Path], out_dir: str | os.PathLike, stems: dict[Path, str] | None = None) -> list[Item]:
    if stems is None:
        from depthstudio.io.images import output_stems

        stems = output_stems(paths)
    return [Item(str(p), stems[p], str(out_dir)) for p in paths]


@dataclass
class BatchReport:
    """What happened to every input of a batch; printed as a summary at the end."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    retried: int = 0  # items run again after the worker running them was lost (cluster runs)
    quiet: bool = False

    def fail(self, path: Path | str, message: str) -> None:
        if str(path) not in message and str(Path(path)) not in message:
            message = f"{path}: {message}"
        self.failed.append((Path(path), message))
        if not self.quiet:
            from tqdm import tqdm

            tqdm.write(f"depthstudio: error: {message}", file=sys.stderr)  # on its own line, under any bar

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self, what: str = "processed") -> str:
        parts = [f"{len(self.done)} {what}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (already done; --overwrite to redo)")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.retried:
            parts.append(f"{self.retried} retried after a worker was lost")
        return ", ".join(parts)


def progress(items: Iterable, total: int | None = None, desc: str = "", enabled: bool | None = None, unit: str = "img"):
    """A tqdm progress bar on stderr when there is more than one item."""
    from tqdm import tqdm

    if enabled is None:
        enabled = (total or 0) > 1
    return tqdm(items, total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, leave=False)


class BatchWork:
    """The per-item work of a batch command. Subclasses are dataclasses of plain settings.

    ``targets(item)``: every file the item writes (resume checks them, cancelled runs clean their
    temporary files); ``prepare()``: load what every item needs (the model), raising
    DepthStudioError when that is impossible (one error for the whole batch); ``__call__(item)``:
    do the item, raising DepthStudioError for a bad input; returns an optional line to print.
    """

    what = "processed"  # for the summary: "<n> depth maps written"
    unit = "img"
    _job: Any = None  # a local run's depthstudio.jobs.Job, for cancel checks inside an item (never pickled)

    def targets(self, item: Item) -> list[Path]:
        raise NotImplementedError

    def written(self, item: Item) -> list[Path]:
        """Every file the item writes (targets and any sidecar): their temporary files are tidied after a kill."""
        return self.targets(item)

    def is_done(self, item: Item) -> bool:
        return all(p.is_file() and p.stat().st_size > 0 for p in self.targets(item))

    def prepare(self) -> None:
        """Load the model (once per process); DepthStudioError fails the whole batch."""

    def __call__(self, item: Item) -> str | None:
        raise NotImplementedError

    # the model and locks are per process: never pickled with the settings
    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)


def split_done(work: BatchWork, items: list[Item], report: BatchReport, overwrite: bool = False) -> list[Item]:
    """Resume: items whose outputs are all there go to ``report.skipped``; the rest are returned."""
    if overwrite:
        return list(items)
    todo = []
    for item in items:
        if work.is_done(item):
            report.skipped.append(Path(item.path))
        else:
            todo.append(item)
    return todo


def run_item(work: BatchWork, item: Item) -> tuple[bool, str | None]:
    """(True, line) when the item succeeded, (False, message) when it failed with a user error."""
    try:
        return True, work(item)
    except Cancelled:
        raise
    except DepthStudioError as exc:
        message = str(exc)
        return False, message if item.path in message else f"{item.path}: {message}"


def run_local(work: BatchWork, items: list[Item], report: BatchReport, desc: str = "", job=None) -> BatchReport:
    """Run every item here, one after the other; a DepthStudioError fails that item only."""
    if items:
        work.prepare()
    for item in progress(items, total=len(items), desc=desc, unit=work.unit):
        check(job)
        ok, message = run_item(work, item)
        if ok:
            report.done.append(Path(item.path))
            if message:
                print(message)
        else:
            report.fail(item.path, message or "failed")
        advance(job)
    return report


def partial_files(work: BatchWork, item: Item) -> list[Path]:
    """Temporary files (``depthstudio.io.atomic``) of an item's targets left by a killed process."""
    found = []
    for target in work.written(item):
        pattern = os.path.join(glob.escape(str(target.parent)), f".{glob.escape(target.stem)}.*.part{glob.escape(target.suffix)}")
        found += [Path(p) for p in glob.glob(pattern)]
    return found


def remove_partial_files(work: BatchWork, items: Iterable[Item]) -> int:
    removed = 0
    for item in items:
        for path in partial_files(work, item):
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed
