"""Depth mapping, depth files, unprojection, edge-cut meshes and point clouds on synthetic scenes
with known surfaces (tilted planes, spheres in front of walls)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from depthstudio.depthmap import DepthMap
from depthstudio.errors import InputError, SettingsError
from depthstudio.geometry.camera import CameraSettings, Intrinsics
from depthstudio.geometry.depth import DepthMapping, find_depth_file, read_depth_file, to_depth
from depthstudio.geometry.mesh import MeshSettings, cut_edge_mask, cut_edges, depth_mesh
from depthstudio.geometry.pipeline import build_mesh
from depthstudio.geometry.points import depth_points
from depthstudio.geometry.unproject import project, project_uv, unproject

# --- synthetic scenes: exact planar depth by ray casting analytic surfaces ---------------------------


def pixel_rays(k: Intrinsics) -> np.ndarray:
    cols, rows = np.meshgrid(np.arange(k.width) + 0.5, np.arange(k.height) + 0.5)
    return np.stack([(cols - k.cx) / k.fx, (k.cy - rows) / k.fy, -np.ones_like(cols)], -1)  # z = -1: planar


def plane_depth(rays, normal, offset):
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    with np.errstate(divide="ignore"):
        t = offset / (rays @ n)
    return np.where(t > 0, t, np.inf), ("plane", n, offset)


def sphere_depth(rays, centre, radius):
    c = np.asarray(centre, float)
    a = np.einsum("...i,...i", rays, rays)
    b = -2 * rays @ c
    cc = c @ c - radius**2
    disc = b * b - 4 * a * cc
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    return np.where((disc > 0) & (t > 0), t, np.inf), ("sphere", c, radius)


def surface_distance(points, surfaces):
    d = np.full(len(points), np.inf)
    for kind, a, b in surfaces:
        if kind == "plane":
            d = np.minimum(d, np.abs(points @ a - b))
        else:
            d = np.minimum(d, np.abs(np.linalg.norm(points - a, axis=1) - b))
    return d


def scene(kind: str, k: Intrinsics):
    rays = pixel_rays(k)
    if kind == "tilted_plane":  # a floor-like plane seen at a grazing angle, and a steep wall
        parts = [plane_depth(rays, (0, 1, 0.25), -1.0), plane_depth(rays, (0.6, 0, 1), -6.0)]
    elif kind == "sphere_wall":
        parts = [plane_depth(rays, (0, 0, 1), -8.0), sphere_depth(rays, (0.3, -0.2, -3.0), 0.9),
                 sphere_depth(rays, (-1.2, 0.8, -5.0), 0.5)]
    else:
        raise ValueError(kind)
    depths = np.stack([p[0] for p in parts])
    z = depths.min(axis=0).astype(np.float32)
    z[~np.isfinite(z)] = 0
    return z, [p[1] for p in parts]


K = Intrinsics.from_fov(320, 240, 60.0, source="flags")


def check_against_truth(mesh, surfaces, z):
    vertex_error = surface_distance(mesh.vertices.astype(np.float64), surfaces)
    assert vertex_error.mean() <= 0.001 * np.median(z[z > 0])
    centroids = mesh.vertices[mesh.faces].astype(np.float64).mean(axis=1)
    off = surface_distance(centroids, surfaces) > 0.01 * -centroids[:, 2]
    assert off.mean() <= 0.005, f"{off.sum()} of {len(off)} faces bridge surfaces"
    return off


@pytest.mark.parametrize("kind", ["tilted_plane", "sphere_wall"])
def test_mesh_lands_on_the_true_surfaces(kind):
    z, surfaces = scene(kind, K)
    mesh = depth_mesh(z, z > 0, K)
    check_against_truth(mesh, surfaces, z)
    # the normals face the camera and agree with the faces' winding (counter-clockwise seen from it)
    tri = mesh.vertices[mesh.faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("ij,ij->i", fn, -tri[:, 0]) > 0).mean() > 0.999
    assert (np.einsum("ij,ij->i", mesh.normals, -mesh.vertices) > 0).mean() > 0.999


def test_without_edge_cut_the_silhouettes_bridge():
    """The test above can fail: with cutting off, rubber-sheet faces appear around the spheres."""
    z, surfaces = scene("sphere_wall", K)
    mesh = depth_mesh(z, z > 0, K, settings=MeshSettings(edge_cut=0))
    centroids = mesh.vertices[mesh.faces].astype(np.float64).mean(axis=1)
    off = surface_distance(centroids, surfaces) > 0.01 * -centroids[:, 2]
    assert off.sum() > 200


def test_edge_cut_is_scale_invariant():
    z, _ = scene("sphere_wall", K)
    a = depth_mesh(z, z > 0, K)
    b = depth_mesh(z * 37.5, z > 0, K)
    # the same faces survive (a quad's diagonal may flip where both are equally good: float rounding)
    assert a.face_count == b.face_count
    assert (a.faces != b.faces).any(axis=1).mean() < 1e-3
    np.testing.assert_allclose(b.vertices, a.vertices * 37.5, rtol=1e-5)
    np.testing.assert_array_equal(cut_edge_mask(z, z > 0), cut_edge_mask(z * 37.5, z > 0))


@pytest.mark.parametrize("kind", ["tilted_plane", "sphere_wall"])
def test_decimated_mesh_stays_on_the_surfaces(kind):
    z, surfaces = scene(kind, K)
    mesh = depth_mesh(z, z > 0, K, settings=MeshSettings(max_faces=8000))
    assert 0 < mesh.face_count <= 8000
    assert mesh.stride > 1 and mesh.decimated
    vertex_error = surface_distance(mesh.vertices.astype(np.float64), surfaces)
    assert np.median(vertex_error) <= 0.002 * np.median(z[z > 0])
    centroids = mesh.vertices[mesh.faces].astype(np.float64).mean(axis=1)
    off = surface_distance(centroids, surfaces) > 0.01 * -centroids[:, 2]
    assert off.mean() <= 0.02
    # UVs are the projection of the (moved) vertices through the intrinsics
    np.testing.assert_allclose(mesh.uvs, project_uv(mesh.vertices, K), atol=1e-5)


def test_strided_mesh_never_bridges():
    z, surfaces = scene("sphere_wall", K)
    mesh = depth_mesh(z, z > 0, K, settings=MeshSettings(stride=4))
    assert mesh.stride == 4 and not mesh.decimated
    check_against_truth(mesh, surfaces, z)


def test_uvs_map_the_photo_exactly():
    z, _ = scene("tilted_plane", K)
    k = Intrinsics(300.0, 290.0, 150.3, 125.7, 320, 240, "flags")
    mesh = depth_mesh(z, z > 0, k)
    xy = project(mesh.vertices, k)
    # every vertex is a pixel centre, and its UV is that pixel's centre
    np.testing.assert_allclose(xy - np.floor(xy), 0.5, atol=1e-3)
    np.testing.assert_allclose(mesh.uvs[:, 0], xy[:, 0] / 320, atol=1e-5)
    np.testing.assert_allclose(mesh.uvs[:, 1], 1 - xy[:, 1] / 240, atol=1e-5)


def test_invalid_pixels_never_become_vertices(rng):
    z, _ = scene("sphere_wall", K)
    bad = rng.random(z.shape) < 0.05
    z = z.copy()
    z[bad] = rng.choice(np.array([0.0, np.nan, np.inf, -np.inf, -1.0], np.float32), size=int(bad.sum()))
    alpha = np.ones(z.shape, bool)
    alpha[:40, :60] = False
    depth = DepthMap(z, "metric", mask=alpha)
    mesh, k, _ = build_mesh(np.zeros((240, 320, 3), np.uint8), depth, CameraSettings(fov_deg=60))
    assert np.isfinite(mesh.vertices).all()
    xy = project(mesh.vertices, k)
    cols, rows = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
    assert depth.valid[rows, cols].all()
    assert not ((rows < 40) & (cols < 60)).any()
    points = depth_points(*to_depth(depth), k)
    assert len(points) == depth.valid.sum() and np.isfinite(points.points).all()


def test_all_invalid_is_a_clear_error():
    z = np.zeros((50, 60), np.float32)
    k = Intrinsics.from_fov(60, 50)
    with pytest.raises(InputError, match="no valid pixels"):
        depth_mesh(z, z > 0, k)
    with pytest.raises(InputError, match="no valid pixels"):
        depth_points(z, z > 0, k)
    z[::2, ::2] = 1.0  # isolated pixels: valid, but no triangle can be made
    with pytest.raises(InputError, match="no triangles"):
        depth_mesh(z, z > 0, k)


def test_cut_edges_and_mask_sides():
    z = np.full((6, 8), 5.0, np.float32)
    z[:, :3] = 2.0  # near object on the left
    h, v = cut_edges(z, z > 0, 0.04)
    assert h[:, 2].all() and h.sum() == 6 and v.sum() == 0
    near = cut_edge_mask(z, z > 0, 0.04, side="near")
    far = cut_edge_mask(z, z > 0, 0.04, side="far")
    assert near[:, 2].all() and near.sum() == 6
    assert far[:, 3].all() and far.sum() == 6
    assert (cut_edge_mask(z, z > 0, 0.04) == (near | far)).all()
    assert not cut_edge_mask(z, z > 0, 1.0).any()  # ln(2.5) = 0.92 < 1.0


def test_point_cloud_colours_and_stride():
    z, surfaces = scene("sphere_wall", K)
    colors = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    cloud = depth_points(z, z > 0, K, colors)
    assert len(cloud) == (z > 0).sum()
    assert surface_distance(cloud.points.astype(np.float64), surfaces).max() < 1e-4
    assert (cloud.colors[0] == colors[0, 0]).all()
    sparse = depth_points(z, z > 0, K, colors, stride=4)
    assert len(sparse) == (z[::4, ::4] > 0).sum()
    assert (sparse.colors[1] == colors[0, 4]).all()
    np.testing.assert_allclose(sparse.points[1], unproject(z, K)[0, 4])


def test_open3d_clean_up():
    pytest.importorskip("open3d")
    from depthstudio.geometry.points import estimate_normals, remove_outliers, voxel_downsample

    z, _ = scene("sphere_wall", K)
    cloud = depth_points(z, z > 0, K, np.full((240, 320, 3), 200, np.uint8))
    noisy = depth_points(z, z > 0, K, np.full((240, 320, 3), 200, np.uint8))
    noisy.points[::500] += np.array([0, 0, 3.0], np.float32)  # flying pixels
    cleaned = remove_outliers(noisy)
    assert len(cleaned) < len(noisy) and (cleaned.points[:, 2] < 0).all()
    down = voxel_downsample(cloud, 0.1)
    assert 100 < len(down) < len(cloud) / 5
    with_normals = estimate_normals(down)
    assert with_normals.normals is not None
    assert (np.einsum("ij,ij->i", with_normals.normals, -with_normals.points) > 0).mean() > 0.99


# --- depth mapping and files ------------------------------------------------------------------------


def test_disparity_maps_through_near_far():
    d = np.array([[0.0, 1.0, 2.0, 4.0]], np.float32)  # 0 = no surface (sky)
    z, valid = to_depth(DepthMap(d, "disparity"), DepthMapping(near=2.0, far=20.0))
    assert valid.tolist() == [[False, True, True, True]]
    # normalised disparity over the valid pixels: 1 -> 0, 2 -> 1/3, 4 -> 1
    expected = 1 / (1 / 20 + np.array([0, 1 / 3, 1]) * (1 / 2 - 1 / 20))
    np.testing.assert_allclose(z[0, 1:], expected, rtol=1e-6)
    assert z[0, 0] == 0
    metric = DepthMap(np.array([[3.5, 0, np.nan, 7.25]], np.float32), "metric")
    z, valid = to_depth(metric, DepthMapping(1, 2))
    assert z[0, 0] == 3.5 and z[0, 3] == 7.25 and valid.tolist() == [[True, False, False, True]]
    with pytest.raises(SettingsError):
        to_depth(DepthMap(d, "disparity"), DepthMapping(near=5, far=1))


def test_depth_files_every_format(tmp_path):
    rng = np.random.default_rng(3)
    metres = rng.uniform(0.5, 9.0, (30, 40)).astype(np.float32)
    metres[0, 0] = 0
    np.save(tmp_path / "a.npy", metres)
    mm = np.round(metres * 1000).astype(np.uint16)
    Image.fromarray(mm).save(tmp_path / "a16.png")
    Image.fromarray(metres).save(tmp_path / "af.tif")
    Image.fromarray((metres * 20).astype(np.uint8)).save(tmp_path / "a8.png")
    d = read_depth_file(tmp_path / "a.npy", "metric")
    np.testing.assert_array_equal(d.values, metres)
    assert not d.valid[0, 0] and d.valid.sum() == 30 * 40 - 1
    np.testing.assert_allclose(read_depth_file(tmp_path / "a16.png", "metric").values, mm / 1000.0, rtol=1e-6)
    np.testing.assert_array_equal(read_depth_file(tmp_path / "af.tif", "metric").values, metres)
    d8 = read_depth_file(tmp_path / "a8.png", "disparity")
    assert d8.kind == "disparity" and d8.values.max() == (metres * 20).astype(np.uint8).max()
    try:
        import OpenEXR
    except ImportError:
        pytest.skip("OpenEXR not installed")
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                      {"Z": metres}) as f:
        f.write(str(tmp_path / "a.exr"))
    np.testing.assert_array_equal(read_depth_file(tmp_path / "a.exr", "metric").values, metres)


def test_depth_file_resizing_and_mismatch(tmp_path):
    metres = np.full((30, 40), 4.0, np.float32)
    metres[10:20, 10:20] = 0  # a hole
    np.save(tmp_path / "d.npy", metres)
    d = read_depth_file(tmp_path / "d.npy", "metric", size=(80, 60))
    assert d.shape == (60, 80)
    assert np.all(d.values[d.valid] == pytest.approx(4.0))
    assert not d.valid[30, 30]  # the hole stays a hole; 0 never blends into the surface
    with pytest.raises(InputError, match="aspect ratio"):
        read_depth_file(tmp_path / "d.npy", "metric", size=(80, 80))


@pytest.mark.parametrize("content, message", [
    (b"", "empty"), (b"not a depth file at all", "cannot read|not a depth|needs the OpenEXR"),
])
def test_bad_depth_files(tmp_path, content, message):
    for suffix in (".npy", ".png", ".exr"):
        path = tmp_path / f"bad{suffix}"
        path.write_bytes(content)
        with pytest.raises(InputError, match=message):
            read_depth_file(path)
    np.save(tmp_path / "cube.npy", np.zeros((4, 5, 6)))
    with pytest.raises(InputError, match="2-D"):
        read_depth_file(tmp_path / "cube.npy")
    (tmp_path / "x.bmp").write_bytes(b"BM")
    with pytest.raises(InputError, match="unknown depth format"):
        read_depth_file(tmp_path / "x.bmp")


def test_depth_folder_pairs_by_stem(tmp_path):
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "IMG_1.npy", np.ones((4, 4)))
    np.save(tmp_path / "depth" / "IMG_2_depth.npy", np.ones((4, 4)))
    Image.new("RGB", (4, 4)).save(tmp_path / "IMG_3.png")
    assert find_depth_file(tmp_path / "IMG_1.jpg", tmp_path / "depth").name == "IMG_1.npy"
    assert find_depth_file(tmp_path / "IMG_2.jpg", tmp_path / "depth").name == "IMG_2_depth.npy"
    with pytest.raises(InputError, match="IMG_3"):
        find_depth_file(tmp_path / "IMG_3.png", tmp_path)  # never the image itself
    assert find_depth_file("anything.jpg", tmp_path / "depth" / "IMG_1.npy").name == "IMG_1.npy"


def test_every_vertex_is_used_by_a_face():
    z, _ = scene("sphere_wall", K)
    z = z.copy()
    z[np.random.default_rng(5).random(z.shape) < 0.2] = 0
    for settings in (MeshSettings(), MeshSettings(stride=3)):
        mesh = depth_mesh(z, z > 0, K, settings=settings)
        assert np.array_equal(np.unique(mesh.faces), np.arange(len(mesh.vertices)))


def test_upsampled_depth_is_cut_at_its_own_resolution():
    """A model predicts at ~518 px and the map is upsampled to the photo: a depth step becomes a
    ramp over several photo pixels. The cut test runs per pixel of the depth's own resolution."""
    from depthstudio.geometry.depth import resize_depth

    low = np.full((30, 40), 1.0, np.float32)
    low[:, 20:] = 1.15  # a 15% step: clearly two surfaces
    ramp = np.tile(np.linspace(2.0, 4.0, 40, dtype=np.float32), (30, 1))  # a smooth slope
    photo = np.zeros((240, 320, 3), np.uint8)
    for values, should_cut in ((low, True), (ramp, False)):
        depth = resize_depth(DepthMap(values, "metric"), (320, 240))
        assert depth.meta["source_size"] == [40, 30]
        naive = depth_mesh(*to_depth(depth), Intrinsics.from_fov(320, 240), settings=MeshSettings())
        mesh, _, meta = build_mesh(photo, depth)
        assert meta["mesh"]["edge_cut_per_photo_pixel"] == pytest.approx(0.04 / 8)
        full = 2 * 319 * 239
        if should_cut:
            assert naive.face_count == full  # per photo pixel the ramp looks smooth...
            assert mesh.face_count < full - 2 * 239  # ...but it is a step: a band of faces is cut
        else:
            assert mesh.face_count == full
