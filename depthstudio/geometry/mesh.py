"""Depth maps to textured triangle meshes: a grid over valid pixels, cut at depth discontinuities.

The cut test is scale-invariant: two neighbouring pixels belong to different surfaces when their
depths differ by more than a factor ``exp(edge_cut)`` (``|ln z1 - ln z2| > edge_cut``), so the same
setting works for metres, scene units and any near/far mapping. A triangle is kept only when all
three corners are valid and no pair of them is cut, so no face bridges a foreground object and the
wall behind it. Each grid quad is split along the diagonal whose ends are closer in depth, which
keeps the three-pixel triangles at silhouette corners.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from depthstudio.errors import InputError, SettingsError
from depthstudio.geometry.camera import Intrinsics
from depthstudio.geometry.unproject import pixel_rays, project_uv
from depthstudio.settings import Settings, setting

#: Default relative-depth threshold: neighbours more than ~4% apart in depth are different surfaces.
#: A plane seen at 85 degrees from its normal changes by well under 1% per pixel in a 640-px photo.
DEFAULT_EDGE_CUT = 0.04
#: Decimation starts from a strided grid with at most about this many times the target's faces:
#: enough for the quadric simplifier to choose where detail goes, small enough to stay fast.
DECIMATION_HEADROOM = 2.0
#: Face budgets above this are met by a strided grid alone (strides per axis chosen to fill the
#: budget): quadric decimation of several million faces takes longer than building the mesh, and
#: at that density the grid is already finer than a depth model's own resolution.
QUADRIC_MAX_FACES = 1_000_000


@dataclass
class MeshSettings(Settings):
    """How depth becomes a mesh (or a point cloud)."""

    section = "mesh"

    edge_cut: float | None = setting(
        DEFAULT_EDGE_CUT, label="Edge cut", minimum=0.0, metavar="R", decimals=3, step=0.01, auto="never cut",
        help="cut edges whose depths differ by more than this relative amount, as |ln(z1/z2)| (0 keeps every edge)")
    max_faces: int | None = setting(2_000_000, label="Max faces", minimum=0, metavar="N", auto="all",
                                    help="decimate to at most N faces (0: full resolution)")
    stride: int = setting(1, label="Stride", minimum=1, maximum=64, metavar="S", help="use every S-th pixel")
    points: bool = setting(False, label="Point cloud", help="a point cloud instead of a mesh")

    def check(self) -> None:
        if self.max_faces == 1:
            raise SettingsError("max faces (--max-faces) must be 0 (full resolution) or >= 2, got 1")

    @property
    def threshold(self) -> float:
        return float(self.edge_cut) if self.edge_cut else math.inf


@dataclass
class DepthMesh:
    """A camera-frame triangle mesh textured by the photo it came from."""

    vertices: np.ndarray  # (N, 3) float32
    faces: np.ndarray  # (M, 3) int32, counter-clockwise seen from the camera
    uvs: np.ndarray  # (N, 2) float32, u = x / W, v = 1 - y / H
    normals: np.ndarray  # (N, 3) float32, unit, facing the camera
    texture: np.ndarray | None  # (H, W, 3) uint8
    intrinsics: Intrinsics
    stride: int = 1
    decimated: bool = False
    info: dict = field(default_factory=dict)

    @property
    def face_count(self) -> int:
        return int(len(self.faces))

    def to_trimesh(self, process: bool = False):
        """A trimesh.Trimesh with the texture as a PBR base colour (or vertex normals only)."""
        import trimesh
        from PIL import Image

        visual = None
        if self.texture is not None:
            material = trimesh.visual.material.PBRMaterial(
                name="photo", baseColorTexture=Image.fromarray(self.texture), metallicFactor=0.0,
                roughnessFactor=1.0, doubleSided=True,
            )
            visual = trimesh.visual.TextureVisuals(uv=self.uvs, material=material)
        return trimesh.Trimesh(self.vertices, self.faces, vertex_normals=self.normals, visual=visual, process=process)


def log_depth(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """ln z where valid, NaN elsewhere (NaN fails every comparison, so invalid pixels drop out)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lz = np.log(np.asarray(z, dtype=np.float32))
    lz[~valid] = np.nan
    return lz


def cut_edges(z: np.ndarray, valid: np.ndarray, edge_cut: float | None = DEFAULT_EDGE_CUT) -> tuple[np.ndarray, np.ndarray]:
    """Grid edges that cross a depth discontinuity, between two valid pixels.

    Returns (horizontal (H, W-1), vertical (H-1, W)) bool: horizontal[r, c] is the edge between
    pixels (r, c) and (r, c+1), vertical[r, c] the edge between (r, c) and (r+1, c).
    """
    t = float(edge_cut) if edge_cut else math.inf
    lz = log_depth(z, valid)
    with np.errstate(invalid="ignore"):
        horizontal = np.abs(lz[:, 1:] - lz[:, :-1]) > t
        vertical = np.abs(lz[1:, :] - lz[:-1, :]) > t
    return horizontal, vertical


def cut_edge_mask(z: np.ndarray, valid: np.ndarray, edge_cut: float | None = DEFAULT_EDGE_CUT, side: str = "both") -> np.ndarray:
    """HxW bool: pixels on a cut edge. ``side`` is "both", "near" (the foreground side, the
    silhouette) or "far" (the background side, where a moving camera reveals what was hidden)."""
    if side not in ("both", "near", "far"):
        raise ValueError(f"side must be 'both', 'near' or 'far', got {side!r}")
    horizontal, vertical = cut_edges(z, valid, edge_cut)
    mask = np.zeros(z.shape, bool)
    if side == "both":
        mask[:, :-1] |= horizontal
        mask[:, 1:] |= horizontal
        mask[:-1, :] |= vertical
        mask[1:, :] |= vertical
        return mask
    zf = np.asarray(z, dtype=np.float32)
    right_nearer = zf[:, 1:] < zf[:, :-1]
    below_nearer = zf[1:, :] < zf[:-1, :]
    if side == "far":
        right_nearer, below_nearer = ~right_nearer, ~below_nearer
    mask[:, :-1] |= horizontal & ~right_nearer
    mask[:, 1:] |= horizontal & right_nearer
    mask[:-1, :] |= vertical & ~below_nearer
    mask[1:, :] |= vertical & below_nearer
    return mask


def _pair_ok(l0: np.ndarray, l1: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(|l0 - l1|, |l0 - l1| <= t); NaN (an invalid end) is never <= t."""
    d = np.subtract(l0, l1)
    np.abs(d, out=d)
    with np.errstate(invalid="ignore"):
        return d, d <= t


def grid_triangles(lz: np.ndarray, t: float, cell_ok: np.ndarray | None = None):
    """Triangles of the grid over ``lz`` (log depth, NaN = invalid) whose three edges are all uncut.

    Returns (used, alt, keep1, keep2): ``used`` (H, W) marks pixels that are a corner of a kept
    triangle; ``alt`` (H-1, W-1) is True where a quad is split along a-d instead of b-c, and
    keep1 / keep2 say which of the quad's two triangles are kept (see grid_faces for the corners).
    """
    la, lb, lc, ld = lz[:-1, :-1], lz[:-1, 1:], lz[1:, :-1], lz[1:, 1:]
    _, h_ok = _pair_ok(lz[:, 1:], lz[:, :-1], t)  # (H, W-1)
    _, v_ok = _pair_ok(lz[1:, :], lz[:-1, :], t)  # (H-1, W)
    dad, ad_ok = _pair_ok(la, ld, t)
    dbc, bc_ok = _pair_ok(lb, lc, t)
    with np.errstate(invalid="ignore"):
        alt = dad < dbc
    del dad, dbc
    alt |= ad_ok & ~bc_ok  # the b-c diagonal is invalid or cut while a-d is fine
    h_top, h_bottom = h_ok[:-1], h_ok[1:]
    v_left, v_right = v_ok[:, :-1], v_ok[:, 1:]
    # T1 = alt ? (a, c, d) : (a, c, b);  T2 = alt ? (a, d, b) : (b, c, d)  -- both CCW seen from the camera
    keep1 = np.where(alt, h_bottom & ad_ok, h_top & bc_ok)
    keep1 &= v_left
    keep2 = np.where(alt, h_top & ad_ok, h_bottom & bc_ok)
    keep2 &= v_right
    if cell_ok is not None:
        keep1 &= cell_ok
        keep2 &= cell_ok
    used = np.zeros(lz.shape, bool)
    used[:-1, :-1] |= keep1 | (keep2 & alt)
    used[1:, :-1] |= keep1 | (keep2 & ~alt)
    used[:-1, 1:] |= keep2 | (keep1 & ~alt)
    used[1:, 1:] |= keep2 | (keep1 & alt)
    return used, alt, keep1, keep2


def grid_faces(vid: np.ndarray, alt: np.ndarray, keep1: np.ndarray, keep2: np.ndarray) -> np.ndarray:
    """(M, 3) int32 faces from a vertex-id grid and the triangle masks of grid_triangles()."""
    va, vb, vc, vd = vid[:-1, :-1], vid[:-1, 1:], vid[1:, :-1], vid[1:, 1:]
    n1, n2 = int(np.count_nonzero(keep1)), int(np.count_nonzero(keep2))
    faces = np.empty((n1 + n2, 3), np.int32)
    a1 = alt[keep1]
    faces[:n1, 0] = va[keep1]
    faces[:n1, 1] = vc[keep1]
    faces[:n1, 2] = np.where(a1, vd[keep1], vb[keep1])
    a2 = alt[keep2]
    b2, d2 = vb[keep2], vd[keep2]
    faces[n1:, 0] = np.where(a2, va[keep2], b2)
    faces[n1:, 1] = np.where(a2, d2, vc[keep2])
    faces[n1:, 2] = np.where(a2, b2, d2)
    return faces


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, toward: np.ndarray | None = None) -> np.ndarray:
    """Area-weighted unit vertex normals; vertices without faces get the direction to the camera."""
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(faces)
    p0 = v[f[:, 0]]
    fn = np.cross(v[f[:, 1]] - p0, v[f[:, 2]] - p0)
    del p0
    n = np.empty(v.shape, np.float32)
    idx = f.ravel()
    for k in range(3):
        n[:, k] = np.bincount(idx, weights=np.repeat(fn[:, k], 3), minlength=len(v))
    return _normalize(n, -v)


def _normalize(n: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    length = np.sqrt(np.einsum("ij,ij->i", n, n))
    bad = ~(length > 1e-30)
    if bad.any():
        n[bad] = fallback[bad]
        length[bad] = np.sqrt(np.einsum("ij,ij->i", n[bad], n[bad]))
    length[~(length > 0)] = 1.0
    n /= length[:, None]
    return n


def _log_slope(lz: np.ndarray, t: float, axis: int) -> np.ndarray:
    """d(ln z)/d(pixel) along ``axis``: the mean of the uncut neighbouring differences (0 if none)."""
    d = np.diff(lz, axis=axis)
    with np.errstate(invalid="ignore"):
        ok = np.abs(d) <= t
    d[~ok] = 0
    total = np.zeros(lz.shape, np.float32)
    count = np.zeros(lz.shape, np.float32)
    lo = (slice(None), slice(None, -1)) if axis == 1 else (slice(None, -1), slice(None))
    hi = (slice(None), slice(1, None)) if axis == 1 else (slice(1, None), slice(None))
    total[lo] += d
    total[hi] += d
    count[lo] += ok
    count[hi] += ok
    np.maximum(count, 1, out=count)
    total /= count
    return total


def depth_normals(lz: np.ndarray, used: np.ndarray, rows: np.ndarray, cols: np.ndarray, intrinsics: Intrinsics,
                  t: float) -> np.ndarray:
    """(N, 3) unit normals where ``used``, on the full-resolution grid (rows, cols), from the depth
    gradient, never across a cut edge.

    For P = z (a, b, -1) with a = (x - cx) / fx and b = (cy - y) / fy, the normal facing the camera is
    (fx z_x, -fy z_y, a fx z_x - b fy z_y + z); divided by z it needs only the log-depth slopes.
    """
    rx, ry = pixel_rays(intrinsics)
    shape = used.shape
    gx = _log_slope(lz, t, axis=1)[used]
    gy = _log_slope(lz, t, axis=0)[used]
    n = np.empty((len(gx), 3), np.float32)
    np.multiply(gx, np.float32(intrinsics.fx), out=n[:, 0])
    np.multiply(gy, np.float32(-intrinsics.fy), out=n[:, 1])
    n[:, 2] = np.broadcast_to(rx[cols][None, :], shape)[used] * n[:, 0]
    n[:, 2] += np.broadcast_to(ry[rows][:, None], shape)[used] * n[:, 1]
    n[:, 2] += np.float32(1.0)
    length = np.sqrt(np.einsum("ij,ij->i", n, n))
    n /= length[:, None]
    return n


def _box_counts(bad: np.ndarray, r0, r1, c0, c1) -> np.ndarray:
    """Number of True in bad[r0:r1, c0:c1] for broadcastable arrays of bounds (exclusive ends)."""
    s = np.zeros((bad.shape[0] + 1, bad.shape[1] + 1), np.int32)
    np.cumsum(np.cumsum(bad, axis=0, dtype=np.int32), axis=1, dtype=np.int32, out=s[1:, 1:])
    return s[r1, c1] - s[r0, c1] - s[r1, c0] + s[r0, c0]


def _strided_cells_ok(z, valid, t, rows, cols) -> np.ndarray:
    """For a grid sampled at ``rows`` x ``cols``: cells with no invalid pixel and no cut edge inside."""
    horizontal, vertical = cut_edges(z, valid, t if math.isfinite(t) else None)
    r0, r1 = rows[:-1, None], rows[1:, None]
    c0, c1 = cols[None, :-1], cols[None, 1:]
    bad = _box_counts(~valid, r0, r1 + 1, c0, c1 + 1)
    bad += _box_counts(horizontal, r0, r1 + 1, c0, c1)
    bad += _box_counts(vertical, r0, r1, c0, c1 + 1)
    return bad == 0


def _sample_axis(n: int, stride: int) -> np.ndarray:
    idx = np.arange(0, n, stride)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx


def depth_mesh(z: np.ndarray, valid: np.ndarray, intrinsics: Intrinsics, texture: np.ndarray | None = None,
               settings: MeshSettings | None = None) -> DepthMesh:
    """Triangle mesh over the valid pixels of a planar depth map, cut at discontinuities.

    With ``settings.max_faces`` the mesh is built on a strided grid with a few times the target's
    faces and then simplified with fast-simplification's quadric decimation, so the full-resolution
    mesh is never built; UVs are recomputed by projection afterwards. Budgets above
    QUADRIC_MAX_FACES (the 2M default among them) are met by the strided grid alone, with row and
    column strides chosen to fill the budget.
    """
    s = (settings or MeshSettings()).validate()
    z = np.asarray(z, dtype=np.float32)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(z) & (z > 0)
    h, w = z.shape
    if (w, h) != (intrinsics.width, intrinsics.height):
        raise SettingsError(f"depth is {w}x{h} but the intrinsics are for {intrinsics.width}x{intrinsics.height}")
    n_valid = int(np.count_nonzero(valid))
    if n_valid < 3:
        raise InputError("the depth map has no valid pixels (all 0, NaN, inf or masked): nothing to mesh")
    t = s.threshold
    stride = int(s.stride)
    if s.max_faces and s.max_faces > QUADRIC_MAX_FACES and 2 * n_valid / stride**2 > s.max_faces:
        for sy, sx in grid_strides(h, w, n_valid, int(s.max_faces), stride)[:3]:
            mesh = _strided_grid_mesh(z, valid, intrinsics, t, sy, sx)
            if mesh.face_count <= s.max_faces:
                break
    else:
        if s.max_faces and 2 * n_valid / stride**2 > s.max_faces:
            stride = max(stride, math.ceil(math.sqrt(2 * n_valid / (DECIMATION_HEADROOM * s.max_faces))))
        if stride == 1:
            mesh = _full_grid_mesh(z, valid, intrinsics, t)
        else:
            mesh = _strided_grid_mesh(z, valid, intrinsics, t, stride)
    mesh.texture = texture
    if mesh.face_count == 0:
        raise InputError("no triangles left: every pixel is isolated by invalid depth or cut edges "
                         "(raise --edge-cut or export --points)")
    if s.max_faces and mesh.face_count > s.max_faces:
        mesh = decimate(mesh, int(s.max_faces))
    return mesh


def _full_grid_mesh(z, valid, intrinsics, t) -> DepthMesh:
    h, w = z.shape
    lz = log_depth(z, valid)
    used, alt, keep1, keep2 = grid_triangles(lz, t)
    vid = np.cumsum(used.ravel(), dtype=np.int32).reshape(h, w) - 1
    faces = grid_faces(vid, alt, keep1, keep2)
    del vid, alt, keep1, keep2
    rows, cols = _axes(h, w)
    vertices, uvs = _grid_vertices(z, used, rows, cols, intrinsics)
    normals = depth_normals(lz, used, rows, cols, intrinsics, t)
    return DepthMesh(vertices, faces, uvs, normals, None, intrinsics, stride=1)


def _axes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(h), np.arange(w)


def _grid_vertices(z, used, rows, cols, intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and UVs at the pixel centres of grid (rows x cols) where ``used``; ``z`` and
    ``used`` are on that grid. The UV is the pixel centre's projection: ((x + 0.5) / W, 1 - (y + 0.5) / H)."""
    rx, ry = pixel_rays(intrinsics)
    shape = used.shape
    zu = z[used]
    n = len(zu)
    vertices = np.empty((n, 3), np.float32)
    np.multiply(np.broadcast_to(rx[cols][None, :], shape)[used], zu, out=vertices[:, 0])
    np.multiply(np.broadcast_to(ry[rows][:, None], shape)[used], zu, out=vertices[:, 1])
    np.negative(zu, out=vertices[:, 2])
    u_of_col = ((cols + 0.5) / intrinsics.width).astype(np.float32)
    v_of_row = (1.0 - (rows + 0.5) / intrinsics.height).astype(np.float32)
    uvs = np.empty((n, 2), np.float32)
    uvs[:, 0] = np.broadcast_to(u_of_col[None, :], shape)[used]
    uvs[:, 1] = np.broadcast_to(v_of_row[:, None], shape)[used]
    return vertices, uvs


def grid_strides(h: int, w: int, n_valid: int, max_faces: int, least: int = 1) -> list[tuple[int, int]]:
    """(row, column) strides, equal or one apart, from the finest grid whose faces (2 per valid
    cell, estimated from the share of valid pixels) fit ``max_faces``, coarser ones after it."""
    share = n_valid / float(h * w)
    options = []
    for sy in range(least, max(h, w) + 2):
        for sx in (sy, sy + 1):
            cells = (len(_sample_axis(h, sy)) - 1) * (len(_sample_axis(w, sx)) - 1)
            options.append((2 * cells * share, sy, sx))
        if 2 * (len(_sample_axis(h, sy)) - 1) * (len(_sample_axis(w, sy)) - 1) * share <= max_faces / 4:
            break
    fitting = sorted((o for o in options if o[0] <= max_faces), reverse=True)
    return [(sy, sx) for _, sy, sx in fitting] or [(least, least)]


def _strided_grid_mesh(z, valid, intrinsics, t, stride, stride_x: int | None = None) -> DepthMesh:
    h, w = z.shape
    stride_x = stride_x or stride
    rows_s, cols_s = _sample_axis(h, stride), _sample_axis(w, stride_x)
    zs = z[np.ix_(rows_s, cols_s)]
    vs = valid[np.ix_(rows_s, cols_s)]
    cell_ok = _strided_cells_ok(z, valid, t, rows_s, cols_s)
    lz = log_depth(zs, vs)
    used, alt, keep1, keep2 = grid_triangles(lz, math.inf, cell_ok)  # cells already hold the cut test
    vid = np.cumsum(used.ravel(), dtype=np.int32).reshape(used.shape) - 1
    faces = grid_faces(vid, alt, keep1, keep2)
    vertices, uvs = _grid_vertices(zs, used, rows_s, cols_s, intrinsics)
    normals = vertex_normals(vertices, faces)
    info = {} if stride_x == stride else {"strides": [int(stride), int(stride_x)]}
    return DepthMesh(vertices, faces, uvs, normals, None, intrinsics, stride=max(stride, stride_x), info=info)


def decimate(mesh: DepthMesh, max_faces: int) -> DepthMesh:
    """Quadric decimation (fast-simplification) to at most ``max_faces``; UVs re-projected."""
    import fast_simplification

    if mesh.face_count <= max_faces:
        return mesh
    points, faces = fast_simplification.simplify(
        mesh.vertices.astype(np.float64), mesh.faces, target_count=int(max_faces), agg=7.0,
    )
    faces = np.asarray(faces, dtype=np.int32)
    if len(faces) > max_faces:  # the simplifier stops near the target; never hand back more than asked
        faces = faces[:max_faces]
    used = np.zeros(len(points), bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used, dtype=np.int32) - 1
    vertices = np.asarray(points, dtype=np.float32)[used]
    faces = remap[faces]
    uvs = project_uv(vertices, mesh.intrinsics)
    normals = vertex_normals(vertices, faces)
    return DepthMesh(vertices, faces, uvs, normals, mesh.texture, mesh.intrinsics, stride=mesh.stride,
                     decimated=True, info=dict(mesh.info))
