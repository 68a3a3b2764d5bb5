"""`depthstudio depth INPUT... -o OUT`: depth maps for photos, at the model's pace.

Reading and preprocessing the next image, inference on the current one, and writing the previous
one's files overlap (ONNX Runtime and PyTorch release the GIL), so a folder runs at model speed.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from depthstudio.batch import BatchWork, Item, split_done
from depthstudio.commands._flags import add_sections, read_sections, save_settings
from depthstudio.commands.common import (
    BatchReport,
    add_ray_flags,
    execute,
    expand_items,
    for_urls,
    path_or_url,
    progress,
    ray_settings_from_args,
)
from depthstudio.errors import DepthStudioError
from depthstudio.io.depthfiles import DepthOutputSettings, depth_outputs, write_depth
from depthstudio.jobs import check
from depthstudio.source import ModelSettings

PREFETCH = 2
SECTIONS = (ModelSettings, DepthOutputSettings)


def add_parser(sub) -> None:
    p = sub.add_parser("depth", help="estimate depth maps for images",
                       description="Estimate depth for images, folders or .txt lists of paths.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=path_or_url, metavar="OUT",
                   help="output folder (or an object-store URL, e.g. s3://bucket/depth/, with fsspec)")
    add_sections(p, SECTIONS)
    p.add_argument("--overwrite", action="store_true", help="redo images whose outputs already exist")
    add_ray_flags(p)
    p.set_defaults(func=run)


@dataclass
class DepthWork(BatchWork):
    """One photo's depth files; the model loads once per process (here, or in each Ray actor).

    ``sections`` are the command's settings ({"model": ModelSettings, "depth_output": ...}): they
    travel to Ray workers and go into each ``<stem>.settings.json``.
    """

    sections: dict

    what = "depth maps written"

    def estimator(self):
        from depthstudio.source import DepthSource

        return DepthSource(self.sections["model"]).estimator()  # loaded once per process (cached)

    def prepare(self) -> None:
        self.estimator()

    def targets(self, item: Item) -> list[Path]:
        output = self.sections["depth_output"]
        return depth_outputs(Path(item.out), item.stem, output.exr, output.color)

    def written(self, item: Item) -> list[Path]:
        return [*self.targets(item), Path(item.out) / f"{item.stem}.settings.json"]

    # three stages, so the local executor can overlap reading, inference and writing
    def read(self, item: Item):
        return self.estimator().preprocess(item.path)

    def infer(self, read):
        photo, x = read
        estimator = self.estimator()
        return estimator.postprocess(photo, estimator.forward(x)[0])

    def write(self, item: Item, depth) -> list[Path]:
        output, out_dir = self.sections["depth_output"], Path(item.out)
        save_settings(out_dir / f"{item.stem}.settings.json", "depth", self.sections)
        return write_depth(depth, out_dir, item.stem, output.exr, output.color)

    def __call__(self, item: Item) -> None:
        self.write(item, self.infer(self.read(item)))


def run(args) -> int:
    ray = ray_settings_from_args(args)
    work = DepthWork(read_sections(args, SECTIONS))
    items, out_dir = expand_items(args.inputs, args.output)
    work = for_urls(work, items)
    report = BatchReport()
    todo = split_done(work, items, report, args.overwrite)
    job = getattr(args, "job", None)
    if todo:
        if ray is not None or not isinstance(work, DepthWork):
            execute(work, todo, report, ray, desc="depth", overwrite=args.overwrite, job=job)
        else:
            work.prepare()
            _run_pipeline(work, todo, report, job)
    print(report.summary(work.what) + f" -> {out_dir}")
    return report.exit_code


def _run_pipeline(work: DepthWork, items: list[Item], report: BatchReport, job=None) -> None:
    """The local executor for depth: DepthWork's stages, overlapped (read next, infer current, write previous)."""
    with ThreadPoolExecutor(1, thread_name_prefix="read") as reader, ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        pending_reads: deque[tuple[Item, Future]] = deque()
        pending_writes: list[tuple[Item, Future]] = []
        queue = iter(items)

        def fill() -> None:
            while len(pending_reads) < PREFETCH:
                item = next(queue, None)
                if item is None:
                    return
                pending_reads.append((item, reader.submit(work.read, item)))

        fill()
        bar = progress(range(len(items)), total=len(items), desc="depth")
        for _ in bar:
            check(job)
            item, future = pending_reads.popleft()
            fill()
            try:
                depth = work.infer(future.result())
            except DepthStudioError as exc:
                report.fail(item.path, str(exc))
                continue
            pending_writes.append((item, writer.submit(work.write, item, depth)))
        for item, future in pending_writes:
            try:
                future.result()
                report.done.append(Path(item.path))
            except DepthStudioError as exc:
                report.fail(item.path, str(exc))
