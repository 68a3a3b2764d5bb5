"""`depthstudio depth INPUT... -o OUT`: depth maps for photos, at the model's pace.

Reading and preprocessing the next image, inference on the current one, and writing the previous
one's files overlap (ONNX Runtime and PyTorch release the GIL), so a folder runs at model speed.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from depthstudio.batch import BatchWork, Item, make_items, split_done
from depthstudio.commands._flags import add_model_flags
from depthstudio.commands.common import (
    BatchReport, add_ray_flags, execute, expand_inputs, output_stems, progress, ray_options_from_args,
)
from depthstudio.errors import DepthStudioError
from depthstudio.io.atomic import ensure_dir
from depthstudio.io.depthfiles import depth_outputs, write_depth

PREFETCH = 2


def add_parser(sub) -> None:
    p = sub.add_parser("depth", help="estimate depth maps for images", description="Estimate depth for images, folders or .txt lists of paths.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    add_model_flags(p)
    p.add_argument("--exr", action="store_true", help="also write <stem>_depth.exr (float32)")
    p.add_argument("--color", action="store_true", help="also write a colour-mapped preview <stem>_depth_color.png")
    p.add_argument("--overwrite", action="store_true", help="redo images whose outputs already exist")
    add_ray_flags(p)
    p.set_defaults(func=run)


@dataclass
class DepthWork(BatchWork):
    """One photo's depth files; the model loads once per process (here, or in each Ray actor)."""

    model: str | None = None
    backend: str = "auto"
    input_size: int = 518
    exr: bool = False
    color: bool = False

    what = "depth maps written"

    def estimator(self):
        if getattr(self, "_estimator", None) is None:
            from depthstudio.models.estimator import load_estimator

            self._estimator = load_estimator(self.model, self.backend, self.input_size)
        return self._estimator

    def prepare(self) -> None:
        self.estimator()

    def targets(self, item: Item) -> list[Path]:
        return depth_outputs(Path(item.out), item.stem, self.exr, self.color)

    # three stages, so the local executor can overlap reading, inference and writing
    def read(self, item: Item):
        return self.estimator().preprocess(item.path)

    def infer(self, read):
        photo, x = read
        estimator = self.estimator()
        return estimator.postprocess(photo, estimator.forward(x)[0])

    def write(self, item: Item, depth) -> None:
        write_depth(depth, Path(item.out), item.stem, self.exr, self.color)

    def __call__(self, item: Item) -> None:
        self.write(item, self.infer(self.read(item)))


def run(args) -> int:
    ray = ray_options_from_args(args)
    paths = expand_inputs(args.inputs)
    out_dir = ensure_dir(args.output)
    work = DepthWork(args.model, args.backend, args.input_size, args.exr, args.color)
    report = BatchReport()
    todo = split_done(work, make_items(paths, out_dir, output_stems(paths)), report, args.overwrite)
    if todo:
        if ray is not None:
            execute(work, todo, report, ray, desc="depth", overwrite=args.overwrite)
        else:
            work.prepare()
            _run_pipeline(work, todo, report)
    print(report.summary(work.what) + f" -> {out_dir}")
    return report.exit_code


def _run_pipeline(work: DepthWork, items: list[Item], report: BatchReport) -> None:
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
