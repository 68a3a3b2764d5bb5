"""Blender add-on speed, inside real Blender (the bpy wheel venv of tests/blender_env.py).

1. A 1-million-vertex depth mesh (1000 x 1000 grid, ~2M triangles) into Blender: the add-on's bulk
   foreach_set path (plugins/blender/blender_data.mesh_from_arrays) against Blender's
   ``Mesh.from_pydata`` with Python lists of the same data (the lists are made before timing).
   Goal: >= 5x faster.
2. The whole operator on a 12-megapixel photo with true depth (the room scene scaled to 4000 x 3000),
   split into the core (load, depth file, mesh arrays) and Blender data creation.

    python benchmarks/bench_blender.py [--skip-12mp]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.blender_env import run_in_blender  # noqa: E402

MESH_BENCH = r'''
import sys, time, json
sys.path.insert(0, sys.argv[1])
import bpy, numpy as np
import blender_data

n = 1000
yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
z = 3.0 + 0.5 * np.sin(xx / 50.0) * np.cos(yy / 70.0)
verts = np.stack([(xx - n / 2) / n * z, (n / 2 - yy) / n * z, -z], axis=-1).reshape(-1, 3).astype(np.float32)
vid = np.arange(n * n, dtype=np.int32).reshape(n, n)
a, b, c, d = vid[:-1, :-1].ravel(), vid[:-1, 1:].ravel(), vid[1:, :-1].ravel(), vid[1:, 1:].ravel()
faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)]).astype(np.int32)
uvs = np.stack([(xx + 0.5) / n, 1 - (yy + 0.5) / n], -1).reshape(-1, 2).astype(np.float32)

def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); mesh = fn(); times.append(time.perf_counter() - t)
        bpy.data.meshes.remove(mesh)
    return min(times)

ours = best(lambda: blender_data.mesh_from_arrays("ours", verts, faces, smooth=False), 3)
ours_uv = best(lambda: blender_data.mesh_from_arrays("ours", verts, faces, uvs=uvs, smooth=False), 3)
t = time.perf_counter(); vlist, flist = verts.tolist(), faces.tolist(); to_lists = time.perf_counter() - t

def pydata():
    me = bpy.data.meshes.new("pydata")
    me.from_pydata(vlist, [], flist)
    me.update(calc_edges=True)
    return me

theirs = best(pydata, 2)
print("RESULT " + json.dumps({"vertices": len(verts), "faces": len(faces), "foreach_set_s": ours,
      "foreach_set_with_uv_s": ours_uv, "from_pydata_s": theirs, "tolist_s": to_lists}))
'''

OPERATOR_BENCH = r'''
import sys, time, json
sys.path.insert(0, sys.argv[1])
import bpy
import blender_checks as bc
bc.clear_scene()
bc.install_from_folder()
import importlib
engine = importlib.import_module(bc.MODULE + ".engine")
ops_mod = importlib.import_module(bc.MODULE + ".operators")
# time the two halves by wrapping them
spans = {}
orig_build, orig_create = engine.build, ops_mod.DEPTHSTUDIO_OT_image_to_depth_mesh.create
def build(*a, **k):
    t = time.perf_counter(); r = orig_build(*a, **k); spans["core_s"] = time.perf_counter() - t; return r
def create(self, *a, **k):
    t = time.perf_counter(); r = orig_create(self, *a, **k); spans["blender_data_s"] = time.perf_counter() - t; return r
engine.build = build
ops_mod.DEPTHSTUDIO_OT_image_to_depth_mesh.create = create
t = time.perf_counter()
result = bpy.ops.depthstudio.image_to_depth_mesh(filepath=sys.argv[2], depth=sys.argv[3],
                                                 depth_kind="metric", fov=float(sys.argv[4]))
total = time.perf_counter() - t
obj = [o for o in bpy.data.objects if o.type == "MESH"][0]
import resource
peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print("RESULT " + json.dumps({"result": sorted(result), "total_s": total, **spans, "peak_gb": peak_gb,
      "vertices": len(obj.data.vertices), "faces": len(obj.data.polygons)}))
'''


def result_of(proc) -> dict:
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"benchmark failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][7:])


def bench_mesh() -> None:
    r = result_of(run_in_blender(MESH_BENCH, REPO / "plugins" / "blender", timeout=1200))
    print(f"1M-vertex mesh into Blender: {r['vertices']:,} vertices, {r['faces']:,} triangles")
    print(f"  foreach_set (add-on)        {r['foreach_set_s']:.3f} s   (+UVs: {r['foreach_set_with_uv_s']:.3f} s)")
    print(f"  from_pydata (Python lists)  {r['from_pydata_s']:.3f} s   (+ {r['tolist_s']:.3f} s to make the lists)")
    print(f"  speed-up: {r['from_pydata_s'] / r['foreach_set_s']:.1f}x  (goal >= 5x); "
          f"{(r['from_pydata_s'] + r['tolist_s']) / r['foreach_set_s']:.1f}x counting list building")


def bench_operator() -> None:
    import numpy as np
    from PIL import Image

    room = REPO.parent / "shared" / "scenes" / "room"
    if not (room / "depth.npy").exists():
        print("12 MP operator run: skipped (../shared/scenes/room absent)")
        return
    camera = json.loads((room / "camera.json").read_text())
    w, h = 4000, 3000
    with tempfile.TemporaryDirectory(prefix="bench-blender-") as tmp:
        photo = Path(tmp) / "room12mp.png"
        depth_path = Path(tmp) / "room12mp.npy"
        Image.open(room / "rgb.png").convert("RGB").resize((w, h), Image.BICUBIC).save(photo, compress_level=1)
        depth = np.load(room / "depth.npy")
        np.save(depth_path, np.asarray(Image.fromarray(depth, mode="F").resize((w, h), Image.BILINEAR)))
        r = result_of(run_in_blender(OPERATOR_BENCH, REPO / "plugins" / "blender" / "tests", photo, depth_path,
                                     camera["hfov_deg"], timeout=1800))
    print(f"12 MP photo + true depth ({w}x{h}) -> {r['vertices']:,} vertices, {r['faces']:,} faces: "
          f"operator {r['total_s']:.2f} s = core {r.get('core_s', float('nan')):.2f} s "
          f"+ Blender data {r.get('blender_data_s', float('nan')):.2f} s; peak memory {r['peak_gb']:.1f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-12mp", action="store_true", help="only the 1M-vertex mesh comparison")
    args = parser.parse_args()
    bench_mesh()
    if not args.skip_12mp:
        bench_operator()


if __name__ == "__main__":
    main()
