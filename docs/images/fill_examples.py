"""Before/after pictures of the revealed-area fill for docs/parallax.md (needs ../shared and git).

    python docs/images/fill_examples.py

The room's true right view (camera 0.25 m to the right) beside the renderer at that pose now,
the renderer of the reference commit (benchmarks/bench_fill.py REFERENCE) and the Telea baseline.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = image.copy()
    cv2.rectangle(out, (0, 0), (8 + 9 * len(text), 22), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    import bench_fill
    import cv2

    from depthstudio.io.atomic import atomic_path

    room = REPO.parent / "shared" / "scenes" / "room"
    rgb, z, k, views = bench_fill.load_scene(room)
    position, truth = views["right"]
    ours = bench_fill.render_ours(rgb, z, k, position)
    telea, _, _ = bench_fill.render_telea(rgb, z, k, position)
    tree = bench_fill._reference_tree(bench_fill.REFERENCE)
    bench_fill._run_child(tree, ["--scene", str(room), "--child", "render", "--out", str(tree)])
    before = np.load(tree / "right.npy")
    import shutil

    shutil.rmtree(tree, ignore_errors=True)

    crop = (slice(60, 400), slice(110, 560))
    panels = [label(truth[crop], "true view"), label(before[crop], f"before ({bench_fill.REFERENCE})"),
              label(ours[crop], "now"), label(telea[crop], "splat + Telea")]
    grid = np.vstack([np.hstack(panels[:2]), np.hstack(panels[2:])])
    zoom = (slice(110, 330), slice(330, 500))
    big = [cv2.resize(img[zoom], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
           for img in (before, ours, truth)]
    strip = np.hstack([label(big[0], "before"), label(big[1], "now"), label(big[2], "true view")])
    for name, image in (("parallax_fill_before_after.png", grid), ("parallax_fill_before_after_zoom.png", strip)):
        with atomic_path(HERE / name) as tmp:
            cv2.imwrite(str(tmp), image[..., ::-1])
        print(HERE / name)


if __name__ == "__main__":
    main()
