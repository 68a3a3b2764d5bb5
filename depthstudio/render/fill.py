"""Revealed areas: what a moving camera uncovers behind foreground edges, filled instead of stretched.

The foreground mesh is cut at depth edges (render/layers.py), so moving the camera opens holes
behind every foreground silhouette. Behind them we add a background layer (see docs/parallax.md):

1. *Where*: silhouette pixels are grouped by the depth behind them; each group grows a band into
   its foreground, up to twice the widest reveal the camera path can make, through pixels clearly
   in front of what the silhouette hides and connected to it. A pixel near two silhouettes extends
   what the nearer one hides. Every cell the foreground layer drops is covered too.
2. *Depth*: what the silhouette hides (its far neighbour's depth), smoothed within each group in log
   depth, pushed back 0.2 % so real surfaces win where the two overlap.
3. *Colour*: from the background only. Telea inpainting per depth group with everything in front
   of the group masked (optionally, ``FillSettings.mirror``, the background's own texture mirrored
   across the silhouette: measured against true views it scores lower, so it is off by default).
   The far-side pixels right at a silhouette (mixed colours from the photo's anti-aliasing: a
   ghost outline once the foreground moves) are masked as sources and repainted too.
   The band is twice the widest reveal because inpainting fills a hole from all its sides: the
   half the camera can uncover is filled from the background side.
4. *Video*: ``FillMemory`` carries a frame's fill to the next, which keeps it wherever the picture
   and depth around it did not change, so revealed areas do not flicker.

The fill layer is drawn with the same renderer, behind the foreground (depth test): where nothing is
revealed it is simply hidden.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from depthstudio.geometry.camera import Intrinsics
from depthstudio.render.layers import DEFAULT_EDGE_CUT, MeshLayer, grid_layer, stride_for
from depthstudio.settings import Settings, setting

#: The fill layer sits this much (relative) behind the depth it extends.
PUSH_BACK = 1.002


@dataclass
class FillSettings(Settings):
    """How revealed areas are filled."""

    section = "fill"

    enabled: bool = setting(True, label="Fill revealed areas", flag="--fill",
                            help="fill revealed areas (--no-fill leaves them empty)")
    band_px: float | None = setting(None, label="Fill band", unit="px", minimum=0.0, flag="", auto="from the camera path",
                                    help="widest reveal in photo pixels")
    inpaint_radius: int = setting(4, label="Inpaint radius", unit="px", minimum=1, maximum=50, flag="", advanced=True,
                                  help="Telea neighbourhood")
    mirror: bool = setting(False, label="Mirror texture", flag="", advanced=True,
                           help="continue the background's texture by mirroring it across the edge "
                                "(measured worse against true views than inpainting alone)")
    max_vertices: int = setting(150_000, label="Fill resolution", minimum=1000, flag="", advanced=True,
                                help="grid resolution of the fill layer (vertices)")


@dataclass
class Revealed:
    """Where and what the fill layer is, at the photo's resolution."""

    band: np.ndarray  # (H, W) bool: foreground pixels the fill layer lies behind
    ring: np.ndarray  # (H, W) bool: far-side pixels next to an edge whose colours are repainted
    depth: np.ndarray  # (H, W) float32: the extended background depth (valid inside band | ring)
    near_edge: np.ndarray  # (H, W) bool: near side of every cut edge (the silhouettes)
    halo: np.ndarray | None = None  # (H, W) bool: far-side pixels right at a silhouette (mixed colours)
    far_edge: np.ndarray | None = None  # (H, W) bool: far side of every cut edge
    halo_px: float = 1.5  # width of the halo
    memory: FillMemory | None = None  # what a video's next frame reuses (see FillMemory)


def cut_sides(z: np.ndarray, valid: np.ndarray, zone: np.ndarray,
              edge_cut: float = DEFAULT_EDGE_CUT) -> tuple[np.ndarray, np.ndarray]:
    """(near, far) HxW bool: the two pixels of every depth step inside the edge zone.

    Steps are looked for among the 8 neighbours at 3/4 of the cut threshold, so every cell the
    (strided) foreground layer cuts has a near-side pixel here and the fill covers it.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lz = np.where(valid, np.log(np.where(valid, z, 1.0)), np.nan).astype(np.float32)
    near = np.zeros(z.shape, bool)
    far = np.zeros(z.shape, bool)
    t = 0.75 * edge_cut
    h, w = z.shape
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = (slice(0, h - dr), slice(max(0, -dc), w - max(0, dc)))
        b = (slice(dr, h), slice(max(0, dc), w - max(0, -dc) if dc < 0 else w))
        if dc < 0:
            b = (slice(dr, h), slice(0, w + dc))
        with np.errstate(invalid="ignore"):
            step = lz[b] - lz[a]  # > 0: the second pixel is farther
        inside = zone[a] | zone[b]
        with np.errstate(invalid="ignore"):
            b_far = inside & (step > t)
            a_far = inside & (step < -t)
        near[a] |= b_far
        far[b] |= b_far
        near[b] |= a_far
        far[a] |= a_far
    return near, far


def _labelled(seeds: np.ndarray, values: list[np.ndarray]):
    """Distance to the nearest seed pixel and, for every pixel, ``values`` at that seed."""
    import cv2

    # DIST_LABEL_PIXEL numbers the seed pixels from 1 in raster order.
    dist, labels = cv2.distanceTransformWithLabels((~seeds).astype(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    return dist, [np.concatenate([[1.0], v[seeds]]).astype(np.float32)[labels] for v in values]


def revealed_regions(z: np.ndarray, valid: np.ndarray, zone: np.ndarray, band_px: float,
                     edge_cut: float = DEFAULT_EDGE_CUT, reach: float = 1.0, groups: int = 4,
                     required: np.ndarray | None = None) -> Revealed | None:
    """The band behind foreground edges and its extended depth; None when there is no edge.

    Silhouettes are grouped by the depth behind them (a box in front of a wall and a pole in front
    of the box reveal different things); each group grows its own band, so a pixel near two
    silhouettes belongs to the band of each it really stands in front of.
    """
    import cv2

    h, w = z.shape
    near, far = cut_sides(z, valid, zone, edge_cut)
    if required is not None:  # the foreground layer's dropped cells: their pixels are edge pixels too
        near |= required & ~far & valid
    if not near.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        lz = np.where(valid, np.log(np.where(valid, z, 1.0)), np.nan).astype(np.float32)
    # What each silhouette pixel hides: the farthest of its neighbours (the far side of its step).
    behind = cv2.dilate(np.where(valid, z, 0).astype(np.float32), np.ones((3, 3), np.uint8))
    lb = np.log(np.maximum(behind, 1e-9))
    levels = lb[near]
    cuts = np.unique(np.quantile(levels, np.linspace(0.0, 1.0, groups + 1)))
    if len(cuts) < 2:
        cuts = np.array([levels.min(), levels.max()])
    cuts[-1] += 1e-6
    band = np.zeros((h, w), bool)
    fill_log = np.zeros((h, w), np.float32)
    best = np.full((h, w), np.inf, np.float32)
    owner = np.full((h, w), -1, np.int16)
    dist_near = None
    for group_index, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
        seeds = near & (lb >= lo) & (lb < hi)
        if not seeds.any():
            continue
        dist, (seed_z, seed_behind) = _labelled(seeds, [z, behind])
        dist_near = dist if dist_near is None else np.minimum(dist_near, dist)
        with np.errstate(divide="ignore", invalid="ignore"):
            to_near = np.abs(lz - np.log(seed_z))
            to_far = np.log(seed_behind) - lz
            # Foreground: closer in depth to the silhouette than to what it hides, clearly in
            # front of that, within reach of the edge...
            candidate = valid & (dist <= band_px) & (to_near < to_far) & (to_far > 0.5 * edge_cut)
        # ...and connected to the silhouette (a wall merely nearer than another wall is not).
        count, components = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
        keep = np.zeros(count, bool)
        keep[components[seeds & candidate]] = True
        keep[0] = False
        mine = keep[components]
        band |= mine
        # A pixel claimed by several silhouettes extends what the nearest of them hides.
        closer = mine & (dist < best)
        fill_log[closer] = np.log(np.maximum(seed_behind[closer], 1e-9))
        best[closer] = dist[closer]
        owner[closer] = group_index
        del components, candidate, to_near, to_far, seed_z, seed_behind, dist
    # Anti-aliased photo edges: the first far-side pixels carry some foreground colour.
    # ``reach``: the foreground grid's cell size, so the fill reaches under every cut cell.
    ring_px = max(1.5, min(h, w) / 600.0, reach + 0.5)
    ring = valid & ~band & (dist_near <= ring_px + 1.0)
    halo_px = max(1.5, min(h, w) / 700.0)
    halo = valid & ~band & (dist_near <= halo_px)
    if required is not None:  # every dropped cell of the foreground must have a fill behind it
        ring |= required & valid & ~band
    # The fill's depth: the band's, smoothed by normalised convolution within each group's claim
    # (never across silhouettes that hide different surfaces); the ring's own.
    sigma = max(1.0, band_px / 8.0)
    shrink = min(1.0, 3.0 / sigma)  # blur at a resolution where sigma is ~3 pixels
    size = (max(1, int(round(w * shrink))), max(1, int(round(h * shrink))))
    smooth = np.zeros((h, w), np.float32)
    for g in np.unique(owner[band]):
        mine = owner == g
        weight: np.ndarray = mine.astype(np.float32)
        values: np.ndarray = np.where(mine, fill_log, 0).astype(np.float32)
        if shrink < 1.0:
            weight = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
            values = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
        blurred: np.ndarray = cv2.GaussianBlur(values, (0, 0), sigma * shrink) / np.maximum(
            cv2.GaussianBlur(weight, (0, 0), sigma * shrink), 1e-6)
        if shrink < 1.0:
            blurred = cv2.resize(blurred, (w, h), interpolation=cv2.INTER_LINEAR)
        smooth[mine] = blurred[mine]
    # The ring lies on the far side of its edge: the farthest depth around it.
    k = 2 * int(math.ceil(reach)) + 1
    around = cv2.dilate(np.where(valid, z, 0).astype(np.float32), np.ones((k, k), np.uint8))
    depth = np.where(band, np.exp(smooth), np.where(ring, around, np.where(valid, z, 0))).astype(np.float32)
    # Never in front of the foreground it hides behind.
    depth[band] = np.maximum(depth[band], z[band] * math.exp(0.5 * edge_cut))
    return Revealed(band=band, ring=ring, depth=depth, near_edge=near, halo=halo, far_edge=far, halo_px=halo_px)


def inpaint(rgb: np.ndarray, mask: np.ndarray, radius: int = 4, max_pixels: int = 4_000_000) -> np.ndarray:
    """Fill ``mask`` in an RGB uint8 image from its surroundings (OpenCV Telea).

    Very large images are inpainted at a lower resolution and the result pasted into the holes.
    """
    import cv2

    h, w = mask.shape
    m = mask.astype(np.uint8)
    if not m.any():
        return rgb.copy()
    if h * w <= max_pixels:
        return cv2.inpaint(np.ascontiguousarray(rgb), m, radius, cv2.INPAINT_TELEA)
    scale = math.sqrt(max_pixels / float(h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    # Any hole pixel under a small pixel makes it a hole (so no foreground colour survives).
    small_mask = cv2.resize(cv2.dilate(m, np.ones((3, 3), np.uint8)), size, interpolation=cv2.INTER_AREA) > 0
    filled = cv2.inpaint(small, small_mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = rgb.copy()
    out[mask] = up[mask]
    return out


def inpaint_behind(rgb: np.ndarray, z: np.ndarray, valid: np.ndarray, revealed: Revealed, edge_cut: float,
                   radius: int = 4, reach: float = 64.0, bins: int = 6, work_pixels: int = 600_000) -> np.ndarray:
    """Inpaint the band and ring with colours from surfaces at or behind the depth each fill pixel
    takes: fill pixels are grouped by depth, and for each group everything nearer is masked too.

    So the wall behind a narrow box is filled from the wall, never from the box's other side, and
    the box behind a pole from the box. Large photos are inpainted at about ``work_pixels``
    (the fill is smooth anyway) and the result scaled back into the holes.
    """
    import cv2

    out = rgb.copy()
    targets = revealed.band | revealed.ring
    if not targets.any():
        return out
    lf = np.log(np.maximum(revealed.depth, 1e-9))
    levels = lf[targets]
    # Groups of equal depth range (at least 10 % apart), so surfaces at clearly different depths
    # (a box and the wall behind it) never share one.
    lo, hi = float(levels.min()), float(levels.max())
    count = int(min(bins, max(1, math.ceil((hi - lo) / 0.1))))
    cuts = np.linspace(lo, hi + 1e-6, count + 1)
    h, w = z.shape
    scale = min(1.0, math.sqrt(work_pixels / float(h * w)))
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else rgb
    sh, sw = small_rgb.shape[:2]
    pad = int(math.ceil((reach + 2 * radius + 4) * scale))
    keep = 4 * int(radius) + 4
    with np.errstate(divide="ignore", invalid="ignore"):
        lz = np.where(valid, np.log(np.where(valid, z, 1.0)), np.inf)
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        group = targets & (lf >= lo) & (lf < hi)
        if not group.any():
            continue
        # Unknown: what is being filled, the ring's mixed colours, and everything in front.
        mask = group | revealed.ring | (lz < lo - 0.5 * edge_cut)
        if scale < 1.0:  # a small pixel is unknown if any of its pixels is
            mask = cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) > 0
            small_group = cv2.resize(group.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) > 0
        else:
            small_group = group
        if mask.all():  # nothing behind to take colour from: use whatever is not being filled
            mask = small_group
        rows, cols = np.nonzero(small_group)
        r0, r1 = max(0, rows.min() - pad), min(sh, rows.max() + pad + 1)
        c0, c1 = max(0, cols.min() - pad), min(sw, cols.max() + pad + 1)
        crop = (slice(r0, r1), slice(c0, c1))
        image = np.ascontiguousarray(small_rgb[crop])
        unknown = mask[crop].astype(np.uint8)
        # Telea's cost grows with every unknown pixel, and most of them are the far parts of whatever
        # stands in front, which only pass colours on towards the group. Those more than a few radii
        # from the group are inpainted at a quarter of the resolution first and then count as known.
        far = unknown.astype(bool) & (cv2.distanceTransform((~small_group[crop]).astype(np.uint8), cv2.DIST_L2, 3) > keep)
        if far.any():
            ch, cw = unknown.shape
            coarse_size = (max(1, cw // 4), max(1, ch // 4))
            coarse_mask = cv2.resize(unknown * 255, coarse_size, interpolation=cv2.INTER_AREA) > 0
            coarse = cv2.inpaint(cv2.resize(image, coarse_size, interpolation=cv2.INTER_AREA),
                                 coarse_mask.astype(np.uint8), int(radius), cv2.INPAINT_TELEA)
            image = image.copy()
            np.copyto(image, cv2.resize(coarse, (cw, ch), interpolation=cv2.INTER_LINEAR), where=far[..., None])
            unknown[far] = 0
        filled = cv2.inpaint(image, unknown, int(radius), cv2.INPAINT_TELEA)
        if scale < 1.0:
            canvas = small_rgb.copy()
            canvas[crop] = filled
            full = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_LINEAR)
            np.copyto(out, full, where=group[..., None])
        else:
            out[crop][group[crop]] = filled[group[crop]]
    return out


def mirror_behind(rgb: np.ndarray, z: np.ndarray, valid: np.ndarray, revealed: Revealed, edge_cut: float,
                  fallback: np.ndarray) -> np.ndarray:
    """Continue the background's texture into the band by mirroring it across the silhouette.

    Every fill pixel p takes the colour at 2 s - p, s its nearest far-side edge pixel, where that
    point is background (not in front of the fill's depth, not a mixed edge colour). Texture
    (a tiled floor, foliage) continues instead of blurring; where the mirror finds no background,
    ``fallback`` (the inpainting) stays. A short feather hides the seam between the two.
    """
    import cv2

    targets = revealed.band | revealed.ring
    far = revealed.far_edge
    if far is None or not far.any() or not targets.any():
        return fallback
    h, w = z.shape
    _, labels = cv2.distanceTransformWithLabels((~far).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    seed_r, seed_c = np.nonzero(far)
    pr, pc = np.nonzero(targets)
    lab = labels[pr, pc] - 1
    sr, sc = seed_r[lab].astype(np.float64), seed_c[lab].astype(np.float64)
    # Mirror about a line just beyond the halo (the photo's mixed edge pixels), away from the
    # silhouette: q = s + (s - p) + (halo + 1) * unit(s - p).
    dr, dc = sr - pr, sc - pc
    norm = np.hypot(dr, dc)
    # Pixels on the far side (the ring) have s next to them: push them out, away from the edge.
    _, near_labels = cv2.distanceTransformWithLabels((~revealed.near_edge).astype(np.uint8), cv2.DIST_L2, 5,
                                                     labelType=cv2.DIST_LABEL_PIXEL)
    near_r, near_c = np.nonzero(revealed.near_edge)
    nl = near_labels[pr, pc] - 1
    on_far_side = ~revealed.band[pr, pc]
    dr = np.where(on_far_side, 0.0, dr)
    dc = np.where(on_far_side, 0.0, dc)
    out_r = np.where(on_far_side, pr - near_r[nl], dr)
    out_c = np.where(on_far_side, pc - near_c[nl], dc)
    out_n = np.maximum(np.hypot(out_r, out_c), 1e-9)
    step = revealed.halo_px + 1.0
    base_r = np.where(on_far_side, pr, sr)
    base_c = np.where(on_far_side, pc, sc)
    qr = np.round(base_r + dr + out_r / out_n * step).astype(np.int64)
    qc = np.round(base_c + dc + out_c / out_n * step).astype(np.int64)
    del norm
    inside = (qr >= 0) & (qr < h) & (qc >= 0) & (qc < w)
    qr, qc = np.clip(qr, 0, h - 1), np.clip(qc, 0, w - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        behind = np.log(np.where(valid[qr, qc], z[qr, qc], 0)) >= np.log(revealed.depth[pr, pc]) - edge_cut
    # Any pixel not in front of the fill depth is background here, even if it is in some band
    # itself (a floor in front of a ball's contact point); only mixed edge colours are refused.
    mixed = revealed.halo if revealed.halo is not None else revealed.ring
    ok = inside & valid[qr, qc] & ~mixed[qr, qc] & ~revealed.near_edge[qr, qc] & behind
    mirrored = np.zeros((h, w), bool)
    mirrored[pr[ok], pc[ok]] = True
    out = fallback.copy()
    out[pr[ok], pc[ok]] = rgb[qr[ok], qc[ok]]
    # Feather where mirrored and inpainted pixels meet.
    edge = mirrored ^ cv2.erode(mirrored.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    edge |= targets & ~mirrored & cv2.dilate(mirrored.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if edge.any():
        soft = cv2.blur(out, (5, 5))
        out[edge] = soft[edge]
    return out


@dataclass
class FillMemory:
    """One video frame's fill, kept for the next frame: where the picture and the depth around a
    fill pixel did not change, the next frame shows the same fill colour instead of a fresh
    inpainting of slightly different (noisy) input, so revealed areas do not flicker."""

    rgb: np.ndarray  # (H, W, 3) uint8: the (padded) photo the fill colours were made from
    z: np.ndarray  # (H, W) float32: its (edge-sharpened) depth
    # rgb and z are references: they follow the frames only where these changed by more than the
    # thresholds, so a slow drift is caught once it adds up instead of never.
    texture: np.ndarray  # (H, W, 3) uint8: the fill colours
    covered: np.ndarray  # (H, W) bool: where ``texture`` holds fill colours
    pad: int = 0  # border padding (pixels) of these arrays around the frame


#: Colour change (grey levels, smoothed over a few pixels) that counts as a change of the scene,
#: well above what a video codec's noise does to a still scene.
CHANGE_LEVEL = 6.0


def _aligned(a: np.ndarray, shift: int, shape: tuple[int, int], fill=0) -> np.ndarray:
    """``a`` (padded by p) as if padded by p + shift instead, cropped or extended to ``shape``."""
    out = np.full(shape + a.shape[2:], fill, a.dtype)
    h, w = shape
    src_r0, dst_r0 = max(0, -shift), max(0, shift)
    rows = min(a.shape[0] - src_r0, h - dst_r0)
    cols = min(a.shape[1] - src_r0, w - dst_r0)
    if rows > 0 and cols > 0:
        out[dst_r0:dst_r0 + rows, dst_r0:dst_r0 + cols] = a[src_r0:src_r0 + rows, src_r0:src_r0 + cols]
    return out


def reuse_fill(texture: np.ndarray, covered: np.ndarray, rgb: np.ndarray, z: np.ndarray, memory: FillMemory | None,
               reach: float, pad: int = 0, edge_cut: float = DEFAULT_EDGE_CUT) -> tuple[np.ndarray, FillMemory]:
    """(texture, this frame's memory): ``texture`` with the previous frame's fill colours wherever
    nothing within ``reach`` pixels (what an inpainted colour depends on) changed: colour by less
    than CHANGE_LEVEL (smoothed), depth by less than half the edge cut (in most of a 5x5 window)."""
    import cv2

    if memory is None:
        return texture, FillMemory(rgb, z, texture, covered, pad)
    h, w = covered.shape
    shift = pad - memory.pad
    if shift == 0 and memory.covered.shape == (h, w):
        old_rgb, old_z, old_tex, old_cov = memory.rgb.copy(), memory.z.copy(), memory.texture, memory.covered
    else:
        old_rgb = _aligned(memory.rgb, shift, (h, w))
        old_z = _aligned(memory.z, shift, (h, w))
        old_tex = _aligned(memory.texture, shift, (h, w))
        old_cov = _aligned(memory.covered, shift, (h, w), False)
    change = cv2.absdiff(np.ascontiguousarray(rgb), old_rgb)
    change = np.maximum(np.maximum(change[..., 0], change[..., 1]), change[..., 2])
    diff = cv2.blur(change, (5, 5))  # uint8 box mean
    # Depth: relative change over half the edge cut, as a ratio (no logarithms of every pixel).
    zf = np.asarray(z, np.float32)
    with np.errstate(invalid="ignore"):
        step = ~(cv2.absdiff(zf, old_z) <= (math.exp(0.5 * edge_cut) - 1.0) * np.minimum(zf, old_z))
    # A depth edge that shifts by a pixel with the model's noise is no change; a region is.
    stepped = cv2.blur(step.astype(np.uint8) * 255, (5, 5)) > 127
    moved = (diff > CHANGE_LEVEL) | stepped
    k = 2 * int(math.ceil(max(1.0, reach))) + 1
    # Max filter of ``moved`` over the reach (separable: a row pass, then a column pass).
    spread = cv2.dilate(cv2.dilate(moved.astype(np.uint8), np.ones((1, k), np.uint8)), np.ones((k, 1), np.uint8))
    keep = covered & old_cov & ~spread.astype(bool)
    out = texture.copy()
    np.copyto(out, old_tex, where=keep[..., None])
    np.copyto(old_rgb, rgb, where=moved[..., None])
    np.copyto(old_z, zf, where=moved)
    return out, FillMemory(old_rgb, old_z, out, covered, pad)


def fill_layer(z: np.ndarray, valid: np.ndarray, zone: np.ndarray, rgb: np.ndarray, intrinsics: Intrinsics,
               band_px: float, edge_cut: float = DEFAULT_EDGE_CUT, settings: FillSettings | None = None,
               revealed: Revealed | None = None, reach: float = 1.0,
               required: np.ndarray | None = None, memory: FillMemory | None = None,
               pad: int = 0) -> tuple[MeshLayer | None, Revealed | None]:
    """The background layer behind every foreground edge (see the module docstring).

    ``z`` is the (edge-sharpened) depth the foreground layer is built from, ``zone`` its edge zone.
    ``memory``: the previous video frame's fill (its colours are kept where nothing changed);
    ``pad``: the border padding of these arrays, to line them up with the memory's.
    Returns (layer or None when nothing can be revealed, the regions it covers); the regions'
    ``memory`` is this frame's FillMemory, for the next.
    """
    import cv2

    s = (settings or FillSettings()).validate()
    if not s.enabled or band_px <= 0:
        return None, None
    if revealed is None:
        revealed = revealed_regions(z, valid, zone, band_px, edge_cut, reach, required=required)
    if revealed is None:
        return None, None
    covered = revealed.band | revealed.ring
    texture = inpaint_behind(rgb, z, valid, revealed, edge_cut, int(s.inpaint_radius), reach=band_px)
    if s.mirror:
        texture = mirror_behind(rgb, z, valid, revealed, edge_cut, texture)
    texture, revealed.memory = reuse_fill(texture, covered, rgb, z, memory, band_px + 4 * int(s.inpaint_radius),
                                          pad, edge_cut)
    h, w = z.shape
    stride = stride_for(w, h, s.max_vertices)
    # Cells touching the band (grown by a cell so the layer reaches under the cut edge itself).
    grow = cv2.dilate(covered.astype(np.uint8), np.ones((2 * stride + 1, 2 * stride + 1), np.uint8)).astype(bool)
    from depthstudio.render.layers import _box_any, sample_axis

    rows, cols = sample_axis(h, stride), sample_axis(w, stride)
    cells = _box_any(covered, rows, cols)
    depth = np.where(grow, revealed.depth * PUSH_BACK, 0).astype(np.float32)
    layer = grid_layer(depth, grow & valid, intrinsics, texture, stride=stride, cells=cells, name="fill")
    if layer.face_count == 0:
        return None, revealed
    return layer, revealed


def reveal_width(z: np.ndarray, valid: np.ndarray, focal_px: float, travel: float) -> float:
    """Widest gap (photo pixels) a camera travelling ``travel`` scene units can open between the
    near and far ends of the scene: f * T * (1/z_near - 1/z_far), with robust ends."""
    values = z[valid]
    if values.size == 0 or travel <= 0:
        return 0.0
    if values.size > 200_000:
        values = values[:: values.size // 200_000]
    z_near, z_far = np.percentile(values, [0.5, 99.5])
    return float(focal_px * travel * (1.0 / max(z_near, 1e-9) - 1.0 / max(z_far, 1e-9)))
