"""Depth engine overhead and backends, as ratios in one run (issue: foundation).

Uses a random-weight Depth Anything of the real ViT-S size (24.8M parameters), exported to ONNX:
- estimate_depth() per photo vs a bare session.run on the already preprocessed tensor (goal <= 1.10x);
- `depthstudio depth` on a folder of the photos vs the same number of bare forwards (goal <= 1.15x);
- peers on the same weights: transformers pipeline("depth-estimation"), PyTorch eager vs ONNX Runtime.

    python benchmarks/bench_models.py [PHOTO_DIR]     (default ../shared/samples/photos)
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


def main() -> None:
    from depthstudio.cli import main as cli
    from depthstudio.models.estimator import load_estimator
    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_model

    photo_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "samples" / "photos"
    work = Path(tempfile.mkdtemp(prefix="bench-models-"))
    if not photo_dir.exists():
        from PIL import Image

        photo_dir = work / "photos"
        photo_dir.mkdir()
        rng = np.random.default_rng(0)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (480 + 40 * i, 640, 3), np.uint8)).save(photo_dir / f"p{i}.jpg")
    photos = sorted(photo_dir.glob("*.jpg"))
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


if __name__ == "__main__":
    main()
