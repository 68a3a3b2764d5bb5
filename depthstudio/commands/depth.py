"""`depthstudio depth INPUT... -o OUT`: depth maps for photos, at the model's pace.

Reading and preprocessing the next image, inference on the current one, and writing the previous
one's files overlap (ONNX Runtime and PyTorch release the GIL), so a folder runs at model speed.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from depthstudio.commands._flags import add_model_flags
from depthstudio.commands.common import BatchReport, expand_inputs, output_stems, progress
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
    p.set_defaults(func=run)


def run(args) -> int:
    from depthstudio.models.estimator import load_estimator

    paths = expand_inputs(args.inputs)
    out_dir = ensure_dir(args.output)
    stems = output_stems(paths)
    report = BatchReport()
    todo = []
    for path in paths:
        outputs = depth_outputs(out_dir, stems[path], args.exr, args.color)
        if not args.overwrite and all(o.exists() for o in outputs):
            report.skipped.append(path)
        else:
            todo.append(path)
    if todo:
        estimator = load_estimator(args.model, args.backend, args.input_size)
        _run_pipeline(estimator, todo, stems, out_dir, args, report)
    print(report.summary("depth maps written") + f" -> {out_dir}")
    return report.exit_code


def _run_pipeline(estimator, paths, stems, out_dir, args, report: BatchReport) -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="read") as reader, ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        pending_reads: deque[tuple[Path, Future]] = deque()
        pending_writes: list[tuple[Path, Future]] = []
        queue = iter(paths)

        def fill() -> None:
            while len(pending_reads) < PREFETCH:
                path = next(queue, None)
                if path is None:
                    return
                pending_reads.append((path, reader.submit(estimator.preprocess, path)))

        fill()
        bar = progress(range(len(paths)), total=len(paths), desc="depth")
        for _ in bar:
            path, future = pending_reads.popleft()
            fill()
            try:
                photo, x = future.result()
                depth = estimator.postprocess(photo, estimator.forward(x)[0])
            except DepthStudioError as exc:
                report.fail(path, str(exc))
                continue
            pending_writes.append((path, writer.submit(write_depth, depth, out_dir, stems[path], args.exr, args.color)))
        for path, future in pending_writes:
            try:
                future.result()
                report.done.append(path)
            except DepthStudioError as exc:
                report.fail(path, str(exc))
