"""Batches on Ray (issue 17): overhead against the local batch, and scaling with worker nodes.

Model: a random-weight Depth Anything of the real ViT-S size exported to ONNX (the compute of
da2-small without downloading it). Every Ray run happens in a loopback-only network namespace
(tests/ray_cluster.py; needs root), so nothing listens on the machine's network.

1. Overhead: `depthstudio depth` on the folder of sample photos, locally vs `--ray` (a local Ray
   runtime started by the command: all of Ray's start-up included), and vs `--ray ADDRESS` on an
   already-running one-node cluster with this machine's CPUs (what a cluster user pays per batch:
   connecting, actors, one model load per actor). Goal: <= 1.2x the local batch.
2. Scaling: a head node with no CPU for work plus two worker nodes of one CPU each; the same batch
   with one actor (one node's worth) and with two (one per node). Goal: >= 1.7x.
   On a machine with two cores shared with other work this is noisy: the figure is what it is.

    python benchmarks/bench_ray.py [--photos DIR] [--input-size N] [--repeat N] [--scaling-copies K]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ray_cluster import LoopbackCluster, Unavailable  # noqa: E402

# Ray runs its workers at nice 15 (RAY_worker_niceness): on a machine shared with other work at nice 0
# that starves them and measures the neighbours, not Ray. Both sides run at the same priority here.
NICE = {"RAY_worker_niceness": "0"}
ENV = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", **NICE}


RATE = re.compile(r"ray: (\d+) items in ([\d.]+) s on (\d+) workers; first worker ready after ([\d.]+) s; ([\d.]+) items/s")


def timed(cmd: list[str], env=None) -> tuple[float, float | None]:
    """(wall seconds of the command, items/s once the first Ray worker was ready, from its -v log)."""
    t = time.perf_counter()
    result = subprocess.run(cmd, env=env or ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    m = RATE.search(result.stderr)
    return seconds, (float(m.group(5)) if m else None)


def best(cmd, repeat, clean: Path, env=None) -> tuple[float, float | None]:
    runs = []
    for _ in range(repeat):
        shutil.rmtree(clean, ignore_errors=True)
        runs.append(timed(cmd, env))
    return min(runs, key=lambda r: r[0])


def in_loopback_namespace(cmd: list[str]) -> list[str]:
    """The command in a fresh network namespace holding only loopback (a local Ray runtime stays inside)."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "samples" / "photos")
    parser.add_argument("--input-size", type=int, default=518)
    parser.add_argument("--scaling-input-size", type=int, default=266, help="smaller: more photos in the same time")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (the best is kept)")
    parser.add_argument("--scaling-copies", type=int, default=4, help="the photo folder this many times for scaling")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    if not args.photos.is_dir():
        raise SystemExit(f"{args.photos}: no photo folder")
    if os.geteuid() != 0:
        raise SystemExit("the Ray runs need root for a loopback-only network namespace (unshare -n)")

    from depthstudio.models.onnx_export import export_onnx
    from depthstudio.models.random_init import make_random_model

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        model = export_onnx(make_random_model(work / "vits", size="vits"), work / "vits.onnx", check=False)
        photos = sorted(p for p in args.photos.iterdir() if p.is_file())
        depth = [sys.executable, "-m", "depthstudio", "-v", "depth", str(args.photos), "--model", str(model),
                 "--input-size", str(args.input_size)]
        print(f"photos: {len(photos)} from {args.photos}; model: ViT-S random weights (ONNX), input {args.input_size}; "
              f"{os.cpu_count()} CPUs")

        if not args.skip_overhead:
            local, _ = best([*depth, "-o", str(work / "local")], args.repeat, work / "local")
            started, started_rate = best(in_loopback_namespace([*depth, "-o", str(work / "ray_local"), "--ray"]), args.repeat,
                           work / "ray_local")
            assert same_files(work / "local", work / "ray_local"), "--ray wrote different files"
            cluster = LoopbackCluster(cpus=(os.cpu_count() or 1,))
            cluster.env.update(NICE)
            cluster.start()
            try:
                env = {**cluster.env}
                running, running_rate = best(cluster.driver([*depth, "-o", str(work / "ray_running"), "--ray", cluster.address]),
                               args.repeat, work / "ray_running", env)
            finally:
                cluster.stop()
            assert same_files(work / "local", work / "ray_running"), "--ray ADDRESS wrote different files"
            print("[1] overhead, the same batch (outputs identical byte for byte)")
            print(f"    local batch: {local:.1f} s ({len(photos) / local:.2f} photos/s)")
            print(f"    --ray (starts a local Ray runtime): {started:.1f} s -> {started / local:.2f}x  (goal <= 1.2x); "
                  f"once its workers were up: {started_rate:.3f} photos/s")
            print(f"    --ray ADDRESS (a running one-node cluster, {os.cpu_count()} CPUs): {running:.1f} s -> "
                  f"{running / local:.2f}x  (goal <= 1.2x); once its workers were up: {running_rate:.3f} photos/s")

        if not args.skip_scaling:
            folder = work / "many"
            folder.mkdir()
            for k in range(args.scaling_copies):
                for p in photos:
                    (folder / f"{p.stem}_{k}{p.suffix}").write_bytes(p.read_bytes())
            n = len(list(folder.iterdir()))
            batch = [sys.executable, "-m", "depthstudio", "-v", "depth", str(folder), "--model", str(model),
                     "--input-size", str(args.scaling_input_size)]
            cluster = LoopbackCluster(cpus=(0, 1, 1))
            cluster.env.update(NICE)
            cluster.start()
            try:
                assert [node["cpus"] for node in cluster.nodes].count(1) == 2, cluster.nodes
                times, rates = {}, {}
                for workers in (1, 2):
                    out = work / f"scale{workers}"
                    times[workers], rates[workers] = best(cluster.driver([*batch, "-o", str(out), "--ray", cluster.address,
                                                          "--ray-workers", str(workers)]), args.repeat, out, cluster.env)
            finally:
                cluster.stop()
            assert same_files(work / "scale1", work / "scale2")
            print(f"[2] scaling, {n} photos at input {args.scaling_input_size}; "
                  "head node with 0 CPUs + two worker nodes of 1 CPU each")
            print(f"    one actor (one node): {times[1]:.1f} s ({n / times[1]:.2f} photos/s); "
                  f"two actors (one per node): {times[2]:.1f} s ({n / times[2]:.2f} photos/s)")
            print(f"    speed-up two nodes / one, whole command: {times[1] / times[2]:.2f}x; once the workers were up: "
                  f"{rates[2] / rates[1]:.2f}x ({rates[1]:.3f} vs {rates[2]:.3f} photos/s)  (goal >= 1.7x; this machine has "
                  f"{os.cpu_count()} cores shared with other work)")
    except Unavailable as exc:
        raise SystemExit(str(exc)) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
