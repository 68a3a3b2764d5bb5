"""Depth engine overhead and backends, as ratios in one run (issue: foundation).

Uses a random-weight Depth Anything of the real ViT-S size (24.8M parameters), exported to ONNX:
- estimate_depth() per photo vs a bare session.run on the already preprocessed tensor (goal <= 1.10x);
- `depthstudio depth` on a folder of the photos vs the same number of bare forwards (goal <= 1.15x);
- peers on the same weights: transformers pipeline("depth-estimation"), PyTorch eager vs ONNX Runtime.
- [4] the other model families, each in its own process (for its peak memory), on random weights:
  Depth Pro (end to end vs bare forward, ONNX vs PyTorch), Prompt Depth Anything with a depth
  prompt (end to end vs bare forward), MoGe-2's post-processing (focal / shift recovery, upsampling)
  against the bare ViT-S forward of [1]. Distill-Any-Depth is the Depth Anything V2 architecture:
  [1]-[3] are its figures.

    python benchmarks/bench_models.py [PHOTO_DIR] [--families-only] [--depth-pro-size tiny|small|real]
      (default ../shared/samples/photos; Depth Pro "tiny" = 0.46M parameters at 128 px; "small" = three
      ViT-S encoders at 256 px; "real" = apple/DepthPro-hf's 952M parameters at 1536 px, minutes per
      forward on a small CPU)
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def best_of(fn, repeat=2):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _photos(photo_dir: Path, work: Path) -> list[Path]:
    if not photo_dir.exists():
        from PIL import Image

        photo_dir = work / "photos"
        photo_dir.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (480 + 40 * i, 640, 3), np.uint8)).save(photo_dir / f"p{i}.jpg")
    return sorted(photo_dir.glob("*.jpg"))


def _peak_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _memory(base: float) -> str:
    return f"peak RSS {_peak_mb():.0f} MB (the process; {base:.0f} MB after imports)"


def _load_rgb(paths, side=800):
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as img:
            img = img.convert("RGB")
            img.thumbnail((side, side))
            out.append(np.asarray(img))
    return out


def staged(est, rgbs, repeat: int = 3, **kw) -> tuple[float, float]:
    """(end to end, bare forward) seconds over the photos, each stage timed in the same iteration
    and the best of ``repeat`` taken per stage: on a shared machine whose load swings by 2-3x from
    one second to the next, timing predict() and forward() in separate loops compares noise."""
    total = bare = 0.0
    for r in rgbs:
        stages = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            photo, x = est.preprocess(r)
            t1 = time.perf_counter()
            out = est.forward(x, **kw) if kw else est.forward(x)
            t2 = time.perf_counter()
            est.postprocess(photo, out[0])
            t3 = time.perf_counter()
            stages.append((t1 - t0, t2 - t1, t3 - t2))
        pre, fwd, post = (min(s[i] for s in stages) for i in range(3))
        total += pre + fwd + post
        bare += fwd
    return total, bare


def family_depth_pro(photos: list[Path], size: str) -> None:
    from depthstudio.models.estimator import Estimator
    from depthstudio.models.onnx_backend import OnnxBackend
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_depth_pro
    from depthstudio.models.torch_backend import TorchBackend
    from depthstudio.models.weights import local_source

    work = Path(tempfile.mkdtemp(prefix="bench-depth-pro-"))
    base = _peak_mb()
    rgbs = _load_rgb(photos[:3])
    folder = make_random_depth_pro(work / "dp", size=size)
    torch_est = Estimator(TorchBackend(folder, device="cpu"), local_source(str(folder)))
    xs = [torch_est.preprocess(r)[1] for r in rgbs]
    torch_est.forward(xs[0])
    full, bare = staged(torch_est, rgbs)
    side = torch_est.backend.fixed_size[0]
    print(f"[4] Depth Pro ({size}, {side} px, torch): predict / bare forward: {full / bare:.3f}x "
          f"(bare {bare / len(xs) * 1000:.0f} ms/photo); {_memory(base)}")
    onnx_path = export_onnx(folder, work / "dp.onnx", check=size != "real")
    onnx_est = Estimator(OnnxBackend(onnx_path), local_source(str(onnx_path)))
    onnx_est.forward(xs[0])
    onnx_full, onnx_bare = staged(onnx_est, rgbs)
    error = max(float(np.abs(onnx_est.predict(r).values - torch_est.predict(r).values).max() /
                      np.abs(torch_est.predict(r).values).max()) for r in rgbs[:1])
    print(f"[4] Depth Pro ({size}, onnx): predict / bare forward: {onnx_full / onnx_bare:.3f}x; "
          f"PyTorch / ONNX Runtime forward: {bare / onnx_bare:.2f}x; max relative depth difference {error:.1e}; "
          f"{_memory(base)}")


def family_prompt_da(photos: list[Path]) -> None:
    from depthstudio.depthmap import DepthMap
    from depthstudio.models.estimator import load_estimator, prompt_tensor
    from depthstudio.models.random_init import make_random_prompt_depth_anything

    work = Path(tempfile.mkdtemp(prefix="bench-prompt-da-"))
    base = _peak_mb()
    rgbs = _load_rgb(photos[:3])
    est = load_estimator(str(make_random_prompt_depth_anything(work / "pda", size="vits")), "torch")
    prompts = [DepthMap(np.random.default_rng(i).uniform(0.5, 5.0, (192, 256)).astype(np.float32), "metric")
               for i in range(len(rgbs))]
    xs = [est.preprocess(r)[1] for r in rgbs]
    est.predict(rgbs[0], prompt=prompts[0])
    full = bare = 0.0
    for r, p in zip(rgbs, prompts):  # the prompt's own preparation counts as end-to-end work
        t = time.perf_counter()
        tensor = prompt_tensor(p)
        prep = time.perf_counter() - t
        f, b = staged(est, [r], repeat=2, prompt=tensor)
        full, bare = full + f + prep, bare + b
    print(f"[4] Prompt Depth Anything (ViT-S, 256x192 prompt, torch): predict / bare forward: {full / bare:.3f}x "
          f"(bare {bare / len(xs) * 1000:.0f} ms/photo); {_memory(base)}")


def family_moge(photos: list[Path], vits_forward_ms: float) -> None:
    import importlib.util

    from depthstudio.models.estimator import load_estimator

    spec = importlib.util.spec_from_file_location("moge_graph", REPO / "tests" / "test_models_families.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    work = Path(tempfile.mkdtemp(prefix="bench-moge-"))
    base = _peak_mb()
    est = load_estimator(str(module.make_moge_onnx(work / "moge.onnx")), "onnx")
    rgbs = _load_rgb(photos[:3], side=4032)
    est.predict(rgbs[0])
    times = []
    for r in rgbs:
        _, x = est.preprocess(r)
        out = est.forward(x)
        t = time.perf_counter()
        est.postprocess(est.preprocess(r)[0], out[0])
        times.append(time.perf_counter() - t)
    post = sum(times) / len(times)
    print(f"[4] MoGe-2 post-processing (focal/shift recovery, metric scale, upsampling to {rgbs[0].shape[1]}x"
          f"{rgbs[0].shape[0]}): {post * 1000:.0f} ms/photo = {post * 1000 / vits_forward_ms:.3f}x a bare ViT-S "
          f"forward at 518 px ({vits_forward_ms:.0f} ms); {_memory(base)} "
          f"(synthetic graph with the published interface: no MoGe weights here)")


def families(photo_dir: Path, depth_pro_size: str, vits_forward_ms: float) -> None:
    import subprocess

    for family in ("depth-pro", "prompt-da", "moge"):
        subprocess.run([sys.executable, __file__, str(photo_dir), "--family", family, "--depth-pro-size", depth_pro_size,
                        "--vits-ms", f"{vits_forward_ms:.1f}"], check=False)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="?", default=str(REPO.parent / "shared" / "samples" / "photos"))
    parser.add_argument("--family", default=None)
    parser.add_argument("--families-only", action="store_true")
    parser.add_argument("--depth-pro-size", default="tiny", choices=("tiny", "small", "real"))
    parser.add_argument("--vits-ms", type=float, default=None)
    args = parser.parse_args()
    if args.family:
        import warnings

        warnings.simplefilter("ignore")
        photos = _photos(Path(args.photos), Path(tempfile.mkdtemp(prefix="bench-photos-")))
        {"depth-pro": lambda: family_depth_pro(photos, args.depth_pro_size), "prompt-da": lambda: family_prompt_da(photos),
         "moge": lambda: family_moge(photos, args.vits_ms or 1000.0)}[args.family]()
        return
    if args.families_only:
        families(Path(args.photos), args.depth_pro_size, args.vits_ms or _vits_forward_ms())
        return
    bare_ms = run_depth_anything(Path(args.photos))
    families(Path(args.photos), args.depth_pro_size, bare_ms)


def _vits_forward_ms() -> float:
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_model

    work = Path(tempfile.mkdtemp(prefix="bench-vits-"))
    est = load_estimator(str(export_onnx(make_random_model(work / "vits", size="vits"), work / "vits.onnx", check=False)), "onnx")
    x = np.zeros((1, 3, 518, 686), np.float32)
    est.backend.forward(x)
    return best_of(lambda: est.backend.forward(x)) * 1000


def run_depth_anything(photo_dir: Path) -> float:
    from depthstudio.cli import main as cli
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_model

    work = Path(tempfile.mkdtemp(prefix="bench-models-"))
    photos = _photos(photo_dir, work)
    photo_dir = photos[0].parent
    print(f"photos: {len(photos)} from {photo_dir}")
    folder = make_random_model(work / "vits", size="vits")
    onnx_path = export_onnx(folder, work / "vits.onnx", check=False)
    est = load_estimator(str(onnx_path), "onnx")
    print(f"model: random ViT-S Depth Anything, providers {est.backend.providers}")

    # 1. estimate_depth vs bare session.run on the preprocessed tensor
    inputs = [est.preprocess(p)[1] for p in photos]
    session, name = est.backend.session, est.backend.input_name
    session.run(None, {name: inputs[0]})  # warm up
    bare = sum(best_of(lambda x=x: session.run(None, {name: x})) for x in inputs)
    full = sum(best_of(lambda p=p: est.predict(p)) for p in photos)
    print(f"[1] estimate_depth / bare session.run: {full / bare:.3f}x  (bare {bare / len(photos) * 1000:.0f} ms/photo)")

    # 2. the CLI on the folder vs bare forwards: once with the model load (a cold CLI run), then with
    #    the model already loaded (the steady state of a long batch)
    out = work / "out"
    args = ["depth", str(photo_dir), "-o", str(out), "--model", str(onnx_path), "--overwrite"]
    from depthstudio.models import estimator as estimator_module

    estimator_module._cached.cache_clear()
    t = time.perf_counter()
    cli(args)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    cli(args)
    warm = time.perf_counter() - t
    print(f"[2] depthstudio depth folder / bare forwards: {cold / bare:.3f}x with the model load, "
          f"{warm / bare:.3f}x with the model loaded")

    # 3. peers on the same weights
    import torch
    from PIL import Image
    from transformers import DPTImageProcessor, pipeline

    from depthstudio.models.torch_backend import load_transformers_model

    torch.set_num_threads(est.backend.session.get_session_options().intra_op_num_threads or 2)
    model = load_transformers_model(folder)
    x518 = inputs[0]
    with torch.inference_mode():
        model(pixel_values=torch.from_numpy(x518))
        torch_time = best_of(lambda: model(pixel_values=torch.from_numpy(x518)))
    onnx_time = best_of(lambda: session.run(None, {name: x518}))
    print(f"[3] PyTorch eager / ONNX Runtime forward at {x518.shape[2]}x{x518.shape[3]}: {torch_time / onnx_time:.2f}x "
          f"(onnx {onnx_time * 1000:.0f} ms, torch {torch_time * 1000:.0f} ms)")
    processor = DPTImageProcessor(do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True,
                                  ensure_multiple_of=14, resample=3, do_rescale=True, do_normalize=True,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    pipe = pipeline("depth-estimation", model=model, image_processor=processor, device="cpu")
    images = [Image.open(p).convert("RGB") for p in photos[:3]]
    pipe(images[0])
    pipe_time = sum(best_of(lambda im=im: pipe(im), repeat=1) for im in images)
    ours = sum(best_of(lambda p=p: est.predict(p), repeat=1) for p in photos[:3])
    print(f"[3] transformers pipeline / DepthStudio estimate_depth (3 photos): {pipe_time / ours:.2f}x")
    return bare / len(photos) * 1000


if __name__ == "__main__":
    main()
