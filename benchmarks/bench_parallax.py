"""Parallax renderer: per-frame cost against a bare textured-grid draw, end-to-end export, memory.

    python benchmarks/bench_parallax.py            # everything (a few minutes on llvmpipe)
    python benchmarks/bench_parallax.py --quick    # shorter clips

Peer: a bare draw of a plain textured grid of ~350k triangles into a 1080p framebuffer (no fill
layer, no anti-aliasing, no read-back, no encoding) on the same OpenGL driver. Our pipeline per
frame: the edge-cut foreground mesh of a 2-megapixel photo at the default mesh resolution, the fill
layer, 4x MSAA, read-back to numpy and H.264 encoding. Ratios, not absolute times, are the result.

Memory: peak RSS of a whole `render + encode` process for a 2 s and a 20 s clip (streaming: the
two should be equal within 20 %).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def scene_2mp():
    """The ground-truth room (../shared) scaled to ~2 MP, else a procedural box scene."""
    import cv2

    from depthstudio.geometry.camera import Intrinsics

    room = REPO.parent / "shared" / "scenes" / "room"
    w, h = 1632, 1224  # 2.0 MP
    if (room / "depth.npy").exists():
        from PIL import Image

        rgb = np.asarray(Image.open(room / "rgb.png").convert("RGB"))
        z = np.load(room / "depth.npy")
        cam = json.loads((room / "camera.json").read_text())
        k = Intrinsics(cam["fx"], cam["fy"], cam["cx"], cam["cy"], cam["width"], cam["height"]).scaled(w, h)
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
        z = cv2.resize(z, (w, h), interpolation=cv2.INTER_NEAREST)
        return rgb, z, k, "room (../shared) at 1632x1224"
    rng = np.random.default_rng(0)
    rgb = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    z = np.full((h, w), 6.0, np.float32)
    z[300:900, 400:900] = 3.0
    z[500:1100, 1000:1300] = 2.0
    return rgb, z, Intrinsics.from_fov(w, h, 60.0), "procedural boxes at 1632x1224"


def bare_grid_ms(ctx, frames: int = 8) -> tuple[float, int]:
    """The peer: a plain textured grid of ~350k triangles, drawn into a 1080p framebuffer."""
    import moderngl

    gw = gh = 420
    ys, xs = np.mgrid[0:gh, 0:gw].astype("f4")
    pos = np.stack([xs / gw * 2 - 1, ys / gh * 2 - 1, np.full_like(xs, 0.5)], -1).reshape(-1, 3)
    uv = np.stack([xs / gw, ys / gh], -1).reshape(-1, 2)
    i = np.arange(gw * gh).reshape(gh, gw)
    a, b, c, d = i[:-1, :-1], i[:-1, 1:], i[1:, :-1], i[1:, 1:]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([b, d, c], -1).reshape(-1, 3)]).astype("i4")
    prog = ctx.program(
        vertex_shader="#version 330\nin vec3 p; in vec2 t; out vec2 v; void main(){v=t; gl_Position=vec4(p,1.0);}",
        fragment_shader="#version 330\nuniform sampler2D s; in vec2 v; out vec4 c; void main(){c=texture(s,v);}")
    vbo = ctx.buffer(np.hstack([pos, uv]).astype("f4").tobytes())
    ibo = ctx.buffer(faces.tobytes())
    vao = ctx.vertex_array(prog, [(vbo, "3f 2f", "p", "t")], ibo)
    tex = ctx.texture((1920, 1080), 3, np.random.default_rng(1).integers(0, 255, (1080, 1920, 3), dtype=np.uint8).tobytes())
    fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((1920, 1080), 4)],
                          depth_attachment=ctx.depth_renderbuffer((1920, 1080)))
    ctx.enable(moderngl.DEPTH_TEST)
    times = []
    for _ in range(frames + 1):
        t = time.perf_counter()
        fbo.use()
        fbo.clear()
        tex.use()
        vao.render()
        ctx.finish()
        times.append(time.perf_counter() - t)
    for obj in (vao, vbo, ibo, tex, prog, fbo):
        obj.release()
    return 1000 * float(np.median(times[1:])), len(faces)


def pipeline_ms(frames: int = 8) -> dict:
    """Our per-frame cost: fill layer, MSAA, read-back and H.264 encoding, 1080p output."""
    from depthstudio.render.camera_path import PathSettings
    from depthstudio.render.parallax import ParallaxRenderer, ParallaxSettings
    from depthstudio.video.writer import VideoWriter

    rgb, z, k, name = scene_2mp()
    settings = ParallaxSettings(path=PathSettings(preset="circle"), size=(1920, 1080))
    t = time.perf_counter()
    renderer = ParallaxRenderer(rgb, (z, z > 0), settings, intrinsics=k)
    prepare_s = time.perf_counter() - t
    render_only, full = [], []
    with tempfile.TemporaryDirectory() as tmp, VideoWriter(Path(tmp) / "b.mp4", 30, renderer.size) as video:
        for i in range(frames + 1):
            u = i / (frames + 1)
            t = time.perf_counter()
            frame = renderer.frame(u)
            t1 = time.perf_counter()
            video.write(frame)
            t2 = time.perf_counter()
            render_only.append(t1 - t)
            full.append(t2 - t)
    info = dict(renderer.prepared.info)
    renderer.release()
    return {"scene": name, "prepare_s": prepare_s, "render_ms": 1000 * float(np.median(render_only[1:])),
            "frame_ms": 1000 * float(np.median(full[1:])), "faces": info["faces"], "stride": info["stride"]}


CLIP = r"""
import resource, sys, time, json
import numpy as np
sys.path.insert(0, {repo!r})
from benchmarks.bench_parallax import scene_2mp
from depthstudio.render.camera_path import PathSettings
from depthstudio.render.parallax import ParallaxRenderer, ParallaxSettings
rgb, z, k, _ = scene_2mp()
t = time.perf_counter()
settings = ParallaxSettings(path=PathSettings(preset="circle", duration={duration}), fps=30, size={size})
with ParallaxRenderer(rgb, (z, z > 0), settings, intrinsics=k) as r:
    r.write_video({out!r})
print(json.dumps({{"wall_s": time.perf_counter() - t, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def clip(duration: float, size: tuple[int, int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        code = CLIP.format(repo=str(REPO), duration=duration, size=size, out=str(Path(tmp) / "clip.mp4"))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
        if done.returncode:
            raise RuntimeError(done.stderr)
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer frames, smaller memory clips")
    args = parser.parse_args()
    from depthstudio.render.gl import offscreen_context, renderer_name

    ctx = offscreen_context()
    print(f"OpenGL: {renderer_name(ctx)}; CPU cores: {os.cpu_count()}")
    bare, tris = bare_grid_ms(ctx)
    print(f"peer  bare textured grid, {tris:,} triangles, 1080p draw:          {bare:8.1f} ms/frame")
    ours = pipeline_ms(4 if args.quick else 8)
    print(f"ours  {ours['scene']}: {ours['faces']:,} triangles (stride {ours['stride']}), prepared in {ours['prepare_s']:.1f} s")
    print(f"ours  render (fill layer, 4x MSAA, read-back), 1080p:        {ours['render_ms']:8.1f} ms/frame"
          f"  = {ours['render_ms'] / bare:.2f}x the bare draw")
    print(f"ours  render + H.264 encode, 1080p:                          {ours['frame_ms']:8.1f} ms/frame"
          f"  = {ours['frame_ms'] / bare:.2f}x the bare draw")
    seconds = 1.0 if args.quick else 4.0
    end = clip(seconds, (1920, 1080))
    frames = int(seconds * 30)
    print(f"ours  {seconds:.0f} s, 30 fps, 1080p MP4 end to end: {end['wall_s']:.1f} s wall "
          f"({1000 * end['wall_s'] / frames:.0f} ms per frame incl. preparation = "
          f"{1000 * end['wall_s'] / frames / bare:.2f}x the bare draw)")
    small = (640, 360)
    short, long = (1.0, 5.0) if args.quick else (2.0, 20.0)
    a, b = clip(short, small), clip(long, small)
    print(f"ours  peak RSS, {small[0]}x{small[1]} clips: {short:.0f} s {a['peak_rss_mb']:.0f} MB, "
          f"{long:.0f} s {b['peak_rss_mb']:.0f} MB  = {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
