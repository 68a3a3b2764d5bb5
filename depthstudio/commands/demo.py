"""`depthstudio demo`: the whole pipeline on the bundled sample scene, with no arguments.

The demo is a short list of steps (STEPS). Each step is a function ``step(ctx) -> list[Path]``
that reads what it needs from the DemoContext and returns the files it wrote; to add one,
write the function and append it to STEPS.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from depthstudio.commands._flags import add_sections, read_sections
from depthstudio.depthmap import DepthMap
from depthstudio.errors import DepthStudioError, InputError, SettingsError, missing_package
from depthstudio.jobs import Cancelled, Job

if TYPE_CHECKING:
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.depth import DepthMapping
    from depthstudio.io.images import Photo
    from depthstudio.source import ModelSettings

DEFAULT_OUTPUT = Path("depthstudio-out") / "demo"


def sample_dir() -> Path:
    from depthstudio.paths import RESOURCES_DIR

    return RESOURCES_DIR / "sample"


@dataclass
class DemoContext:
    """What the steps share: the sample, the depth used, the camera, and where to write."""

    out_dir: Path
    photo: Photo
    true_depth: DepthMap  # the sample's exact metric depth
    camera: CameraSettings  # matching the sample's intrinsics
    depth: DepthMap | None = None  # what the pipeline uses (model prediction or true depth)
    mapping: DepthMapping | None = None  # for disparity
    model: ModelSettings | None = None
    sample_depth: bool = False
    notes: list[str] = field(default_factory=list)
    job: Job | None = None  # checked between steps and inside long ones (a cancel stops the demo)

    def say(self, text: str) -> None:
        self.notes.append(text)
        print(text)


def load_sample(out_dir: Path, model=None, sample_depth: bool = False) -> DemoContext:
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.depth import DepthMapping, read_depth_file
    from depthstudio.io.images import load_image

    folder = sample_dir()
    if not (folder / "image.png").is_file():
        raise InputError(f"the bundled sample is missing from {folder}; run scripts/make_sample_scene.py")
    photo = load_image(folder / "image.png")
    cam = json.loads((folder / "camera.json").read_text())
    true_depth = read_depth_file(folder / "depth.npy", "metric")
    true_depth.model_id = "sample ground truth"
    camera = CameraSettings(fx=cam["fx"], fy=cam["fy"], cx=cam["cx"], cy=cam["cy"])
    mapping = DepthMapping(near=cam["depth_min"], far=cam["depth_max"])  # relative depth lands at the true range
    return DemoContext(out_dir, photo, true_depth, camera, mapping=mapping, model=model, sample_depth=sample_depth)


def step_depth(ctx: DemoContext) -> list[Path]:
    """Depth from the default model when it is available, else the sample's own depth."""
    from depthstudio.io.depthfiles import write_depth

    if ctx.sample_depth:
        ctx.depth = ctx.true_depth
        ctx.say("depth: the sample's own exact depth (--sample-depth)")
    else:
        try:
            from depthstudio.source import DepthSource

            est = DepthSource(ctx.model).estimator()
            ctx.depth = est.predict(ctx.photo)
            ctx.say(f"depth: estimated with {est.model_id}")
        except (DepthStudioError, ImportError) as exc:
            ctx.depth = ctx.true_depth
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            ctx.say(f"depth: the model is not available ({first}); using the sample's own exact depth instead")
    return write_depth(ctx.depth, ctx.out_dir, "sample")


def step_mesh(ctx: DemoContext) -> list[Path]:
    """Textured, edge-cut mesh in every format, plus a coloured point cloud."""
    from depthstudio.geometry.export import export
    from depthstudio.geometry.mesh import DepthMesh, MeshSettings
    from depthstudio.geometry.pipeline import build_mesh

    depth = ctx.depth
    assert depth is not None  # the depth step always runs first
    mesh, intrinsics, meta = build_mesh(ctx.photo, depth, ctx.camera, ctx.mapping, MeshSettings())
    assert isinstance(mesh, DepthMesh)  # points=False: a mesh
    formats = ("obj", "ply", "glb") + (("usdz",) if importlib.util.find_spec("pxr") else ())
    files = export(mesh, ctx.out_dir, "sample", formats, meta)
    if "usdz" not in formats:
        ctx.say("mesh: no USDZ (needs usd-core: pip install 'depthstudio[usd]')")
    ctx.say(f"mesh: {len(mesh.vertices):,} vertices, {mesh.face_count:,} faces, "
            f"hfov {intrinsics.hfov_deg:.1f} deg ({intrinsics.source})")
    points, _, meta = build_mesh(ctx.photo, depth, ctx.camera, ctx.mapping, MeshSettings(points=True))
    files += export(points, ctx.out_dir, "sample_points", ("ply",), meta)
    return files


def step_dof(ctx: DemoContext) -> list[Path]:
    """A depth-of-field still: focused on the near blue ball, the room behind falls out of focus."""
    from depthstudio.commands.dof import render_still_arrays

    path = ctx.out_dir / "sample_dof.png"
    meta = render_still_arrays(ctx.photo, ctx.depth, ctx.camera, ctx.mapping, path, f_number=1.0,
                               focus_point=(350.0, 345.0))
    ctx.say(f"dof: f/1.0 at {meta['focal_mm_35mm_equivalent']:.0f} mm, focused at {meta['focus_distance']:.2f} "
            f"(sharp from {meta['sharp_from']:.2f} to {meta['sharp_to'] or float('inf'):.2f})")
    return [path, path.with_name(path.stem + ".dof.json")]


def step_parallax(ctx: DemoContext) -> list[Path]:
    """A parallax preview: a seamless 3 s circle move around the sample, as a GIF."""
    from depthstudio.render.camera_path import PathSettings
    from depthstudio.render.parallax import ParallaxRenderer, ParallaxSettings

    path = ctx.out_dir / "sample_parallax.gif"
    settings = ParallaxSettings(path=PathSettings(preset="circle", duration=3.0), fps=15)
    with ParallaxRenderer(ctx.photo, ctx.depth, settings, camera=ctx.camera, mapping=ctx.mapping) as renderer:
        renderer.write_video(path, job=ctx.job)
        ctx.say(f"parallax: {renderer.frame_count()} frames, {renderer.size[0]}x{renderer.size[1]}, "
                f"preset circle, steady depth {renderer.prepared.steady_depth:.2f}")
    return [path]


def step_stereo(ctx: DemoContext) -> list[Path]:
    """A red-cyan anaglyph of the sample (stereo 3D with the shared renderer and revealed-area fill)."""
    from depthstudio.render.stereo import StereoSettings, render_stereo

    result = render_stereo(ctx.photo, ctx.depth, ctx.out_dir, StereoSettings(layout="anaglyph"), stem="sample",
                           camera=ctx.camera, mapping=ctx.mapping)
    ctx.say(f"stereo: anaglyph, eyes {result['rig'].baseline:.3f} apart")
    return [Path(p) for p in result["files"]]


#: The demo, in order. Append a step to add one.
STEPS: list[Callable[[DemoContext], list[Path]]] = [
    step_depth,
    step_mesh,
    step_dof,
    step_parallax,
    step_stereo,
]


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the bundled sample scene",
                       description="Run depth, mesh export and previews on the bundled sample; no arguments needed.")
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, metavar="OUT",
                   help=f"output folder (default ./{DEFAULT_OUTPUT})")
    p.add_argument("--sample-depth", action="store_true", help="use the sample's exact depth instead of a model")
    p.add_argument("--steps", default=None, metavar="LIST",
                   help="comma-separated steps to run (default all: " + ",".join(step_names()) + ")")
    add_sections(p, _sections())
    p.set_defaults(func=run)


def _sections():
    from depthstudio.source import ModelSettings

    return (ModelSettings,)


def step_names() -> list[str]:
    return [step.__name__.removeprefix("step_") for step in STEPS]


def selected_steps(text: str | None) -> list[Callable[[DemoContext], list[Path]]]:
    if not text:
        return list(STEPS)
    wanted = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in step_names()]
    if unknown:
        raise SettingsError(f"unknown demo step {', '.join(unknown)}; choose from {','.join(step_names())}")
    if "depth" not in wanted:
        wanted.insert(0, "depth")  # every other step needs the depth
    return [step for step in STEPS if step.__name__.removeprefix("step_") in wanted]


def run(args) -> int:
    from depthstudio.io.atomic import ensure_dir

    steps = selected_steps(getattr(args, "steps", None))
    out_dir = ensure_dir(args.output)
    ctx = load_sample(out_dir, read_sections(args, _sections())["model"], getattr(args, "sample_depth", False))
    job = getattr(args, "job", None)
    ctx.job = job
    print(f"DepthStudio demo on the bundled sample ({ctx.photo.width}x{ctx.photo.height}) -> {out_dir.resolve()}")
    written: list[Path] = []
    failed = 0
    for step in steps:
        name = step.__name__.removeprefix("step_")
        if job is not None:
            job.check()
        try:
            written += step(ctx)
        except Cancelled:
            raise
        except DepthStudioError as exc:
            failed += 1
            print(f"depthstudio: error: demo step {name}: {exc}", file=sys.stderr)
        except ImportError as exc:  # an optional package this step needs: skip it, say how to get it
            missing = missing_package(exc)
            if missing is None:
                raise
            ctx.say(f"{name}: skipped, {missing}")
    for path in written:
        print(f"  {path}")
    print(f"demo finished: {len(written)} files in {out_dir.resolve()}" + (f", {failed} step(s) failed" if failed else ""))
    return 1 if failed else 0
