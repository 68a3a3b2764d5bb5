"""`depthstudio depth INPUT... -o OUT`: depth maps for photos, at the model's pace.

Reading and preprocessing the next image, inference on the current one, and writing the previous
one's files overlap (ONNX Runtime and PyTorch release the GIL), so a folder runs at model speed.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from depthstudio.commands._flags import add_sections, read_sections, save_settings
from depthstudio.commands.common import BatchReport, expand_inputs, progress
from depthstudio.errors import DepthStudioError
from depthstudio.io.atomic import ensure_dir
from depthstudio.io.depthfiles import DepthOutputSettings, depth_outputs, write_depth
from depthstudio.io.images import output_stems
from depthstudio.jobs import check
from depthstudio.source import ModelSettings

PREFETCH = 2
SECTIONS = (ModelSettings, DepthOutputSettings)


def add_parser(sub) -> None:
    p = sub.add_parser("depth", help="estimate depth maps for images",
                       description="Estimate depth for images, folders or .txt lists of paths.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or .txt lists")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="output folder")
    add_sections(p, SECTIONS)
    p.add_argument("--overwrite", action="store_true", help="redo images whose outputs already exist")
    p.set_defaults(func=run)


def run(args) -> int:
    from depthstudio.models.estimator import load_estimator

    s = read_sections(args, SECTIONS)
    model, output = s["model"], s["depth_output"]
    paths = expand_inputs(args.inputs)
    out_dir = ensure_dir(args.output)
    stems = output_stems(paths)
    report = BatchReport()
    todo = []
    for path in paths:
        outputs = depth_outputs(out_dir, stems[path], output.exr, output.color)
        if not args.overwrite and all(o.exists() for o in outputs):
            report.skipped.append(path)
        else:
            todo.append(path)
    if todo:
        estimator = load_estimator(model.model, model.backend, model.input_size)
        _run_pipeline(estimator, todo, stems, out_dir, s, report, getattr(args, "job", None))
    print(report.summary("depth maps written") + f" -> {out_dir}")
    return report.exit_code


def _write(depth, out_dir: Path, stem: str, s: dict) -> list[Path]:
    output = s["depth_output"]
    save_settings(out_dir / f"{stem}.settings.json", "depth", s)
    return write_depth(depth, out_dir, stem, output.exr, output.color)


def _run_pipeline(estimator, paths, stems, out_dir, s, report: BatchReport, job=None) -> None:
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
            check(job)
            path, future = pending_reads.popleft()
            fill()
            try:
                photo, x = future.result()
                depth = estimator.postprocess(photo, estimator.forward(x)[0])
            except DepthStudioError as exc:
                report.fail(path, str(exc))
                continue
            pending_writes.append((path, writer.submit(_write, depth, out_dir, stems[path], s)))
        for path, future in pending_writes:
            try:
                future.result()
                report.done.append(path)
            except DepthStudioError as exc:
                report.fail(path, str(exc))
