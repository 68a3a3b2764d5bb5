"""`depthstudio depth INPUT... -o OUT`: depth maps for photos, at the model's pace.

Reading and preprocessing the next image, inference on the current one, and writing the previous
one's files overlap (ONNX Runtime and PyTorch release the GIL), so a folder runs at model speed.
"""
from __future__ import annotations

import argparse
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from depthstudio.commands.common import BatchReport, expand_inputs, progress
from depthstudio.errors import DepthStudioError
from depthstudio.io.atomic import ensure_dir
from depthstudio.io.depthfiles import depth_outputs, write_depth
from depthstudio.models.catalogue import DEFAULT_MODEL

PREFETCH = 2


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL, help=f"catalogue name, .onnx file or transformers folder (default {DEFAULT_MODEL})")
    group.add_argument("--backend", default="auto", choices=("auto", "onnx", "torch"), help="inference backend (default: ONNX Runtime when the model has ONNX weights)")
    group.add_argument("--input-size", type=int, default=518, help="shorter side of the network input, a multiple of 14 (default 518)")


def add_parser(sub) -> None:
    p = sub.add_parser("depth", help="estimate depth maps for images", description="Estimate depth for images, folders or .txt lists of paths.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    add_model_arguments(p)
    p.add_argument("--exr", action="store_true", help="also write <stem>_depth.exr (float32)")
    p.add_argument("--color", action="store_true", help="also write a colour-mapped preview <stem>_depth_color.png")
    p.add_argument("--overwrite", action="store_true", help="redo images whose outputs already exist")
    p.set_defaults(func=run)


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """File stems, made unique by the parent folder's name when two inputs share one."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    return {p: (f"{p.parent.name}_{p.stem}" if counts[p.stem] > 1 else p.stem) for p in paths}


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
