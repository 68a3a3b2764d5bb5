"""Pieces every batch command shares: input expansion, progress, per-input error handling."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from depthstudio.errors import DepthStudioError
from depthstudio.io.images import find_inputs
from depthstudio.jobs import Cancelled, Job, check


def progress(items: Iterable, total: int | None = None, desc: str = "", enabled: bool | None = None):
    """A tqdm progress bar on stderr when it is a terminal or there is more than one item."""
    from tqdm import tqdm

    if enabled is None:
        enabled = (total or 0) > 1
    return tqdm(items, total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr, leave=False)


@dataclass
class BatchReport:
    """What happened to every input of a batch; printed as a summary at the end."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def fail(self, path: Path, message: str) -> None:
        self.failed.append((path, message))
        print(f"depthstudio: error: {message}", file=sys.stderr)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self, what: str = "processed") -> str:
        parts = [f"{len(self.done)} {what}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (already done; --overwrite to redo)")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)


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
