"""What the render thread does for the views, through the shared renderer's public API (depthstudio.render).

Runs only on the render thread (depthstudio.app.render_service): the OpenGL context, the scene
of the current photo's view mesh, and the parallax and stereo renderers live in its ``state`` dict.
No Qt here.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

VIEW_BACKGROUND = (0.11, 0.115, 0.125)
#: Smallest on-screen size of one grid cell for the points and wireframe styles: denser grids
#: alias into moire at the photo's own camera, so those styles draw a coarser grid of the same surface.
MIN_CELL_PX = {"points": 3.0, "wireframe": 6.0}


def context(state: dict):
    if "ctx" not in state:
        from depthstudio.render.gl import offscreen_context

        state["ctx"] = offscreen_context()
    return state["ctx"]


def _release(state: dict, key: str) -> None:
    obj = state.pop(key, None)
    if obj is not None:
        obj.release()


def _scene(state: dict, key: str, mesh, texture):
    from depthstudio.render.layers import MeshLayer
    from depthstudio.render.scene import Scene

    _release(state, key)
    layer = MeshLayer.from_mesh(dataclasses.replace(mesh, texture=texture) if texture is not None else mesh, name="photo")
    state[key] = Scene(context(state), [layer])
    return state[key]


def set_geometry(state: dict, gid: int, derived) -> None:
    """Upload the view mesh of the current photo (replacing the previous one)."""
    _scene(state, "scene", derived.view_mesh, derived.preview_rgb)
    for key in [k for k in state if k.startswith("coarse:")]:
        _release(state, key)
    state["gid"] = gid
    state["derived"] = derived


def _styled_scene(state: dict, derived, style: str, size: tuple[int, int]):
    """The scene to draw ``style`` with at ``size``: the view mesh, or a coarser grid for points and wireframe."""
    base_stride = int(derived.stats.get("stride", 1))
    ph, pw = derived.preview_z.shape
    cell_px = min(size[0] / pw, size[1] / ph) * base_stride  # on-screen size of one cell at the photo's camera
    factor = max(1, math.ceil(MIN_CELL_PX.get(style, 0.0) / max(cell_px, 1e-6)))
    if style == "mesh" or factor == 1:
        return state["scene"], cell_px
    stride = base_stride * factor
    key = f"coarse:{stride}"
    if key not in state:
        from depthstudio.geometry.mesh import MeshSettings, depth_mesh

        edge_cut = derived.sections["mesh"].edge_cut if "mesh" in derived.sections else None
        mesh = depth_mesh(derived.preview_z, derived.preview_valid, derived.preview_intrinsics, derived.preview_rgb,
                          MeshSettings(edge_cut=edge_cut, stride=stride))
        _scene(state, key, mesh, derived.preview_rgb)
    return state[key], cell_px * factor


def target(state: dict, key: str, size: tuple[int, int], samples: int = 4):
    """An offscreen target of ``size`` for one view, re-made when the view is resized."""
    from depthstudio.render.scene import OffscreenRenderer

    current = state.get(key)
    if current is None or current.size != tuple(size):
        _release(state, key)
        state[key] = OffscreenRenderer(context(state), size, samples=samples)
    return state[key]


def orbit_pose(derived, yaw: float, pitch: float, distance_scale: float, pan: tuple[float, float]):
    """A camera orbiting the scene's steady point; (0, 0, 1, (0, 0)) is the photo's own camera."""
    from depthstudio.render.camera_path import CameraPose, rotation_from_euler, steady_distance

    d = steady_distance(derived.preview_z, derived.preview_valid, 0.5)
    pivot = np.array([0.0, 0.0, -d])
    rotation = rotation_from_euler(yaw, pitch, 0.0)
    offset = rotation @ np.array([pan[0] * d, pan[1] * d, d * distance_scale])
    return CameraPose(position=pivot + offset, rotation=rotation)


def view_intrinsics(derived, size: tuple[int, int]):
    """The photo's camera fitted inside a view of ``size``: the whole photo shows, whatever the aspect."""
    from depthstudio.render.camera_path import fit_intrinsics

    return fit_intrinsics(derived.preview_intrinsics, *size, fit="contain")


def draw_orbit(state: dict, derived, view, style: str, size: tuple[int, int]) -> np.ndarray | None:
    """The 3D view: the view mesh from an orbiting camera, as mesh, points or wireframe."""
    if state.get("scene") is None:
        return None
    yaw, pitch, distance_scale, pan = view
    scene, cell_px = _styled_scene(state, derived, style, size)
    out = target(state, "orbit_target", size)
    point_size = max(1.0, min(4.0, cell_px * 0.6))
    return out.render(scene, orbit_pose(derived, yaw, pitch, distance_scale, pan), view_intrinsics(derived, size),
                      VIEW_BACKGROUND, style=style, point_size=point_size)


def parallax_renderer(state: dict, derived, settings):
    """The parallax renderer for the current photo and settings (re-made only when they change)."""
    from depthstudio.io.images import Photo
    from depthstudio.render.parallax import ParallaxRenderer

    key = (id(derived), repr(settings))
    if state.get("parallax_key") != key:
        _release(state, "parallax")
        state.pop("parallax_key", None)
        preview = dataclasses.replace(settings, size=None)  # the preview photo's own size
        state["parallax"] = ParallaxRenderer(Photo(rgb=derived.preview_rgb), (derived.preview_z, derived.preview_valid),
                                             preview, intrinsics=derived.preview_intrinsics, ctx=context(state))
        state["parallax_key"] = key
    return state["parallax"]


def draw_parallax(state: dict, derived, settings, u: float, size=None) -> np.ndarray:
    """One frame of the parallax move at clip position u, exactly as the video export draws it."""
    return parallax_renderer(state, derived, settings).frame(float(u) % 1.0 if math.isfinite(u) else 0.0)


def stereo_renderer(state: dict, derived, settings):
    """The stereo renderer of the current photo + depth (+ camera and mapping, which make ``derived``):
    made once per ``derived``, then only ``update``-d, so a new layout or strength re-uses its layers."""
    from depthstudio.io.images import Photo
    from depthstudio.render.stereo import StereoRenderer

    settings = preview_stereo_settings(settings)
    if state.get("stereo_derived") is not derived:
        _release(state, "stereo")
        state.pop("stereo_derived", None)
        h, w = derived.preview_z.shape
        state["stereo"] = StereoRenderer(Photo(rgb=derived.preview_rgb), (derived.preview_z, derived.preview_valid),
                                         settings, intrinsics=derived.preview_intrinsics, ctx=context(state),
                                         size=(w, h))
        state["stereo_derived"] = derived
    elif state["stereo"].settings != settings:
        state["stereo"].update(settings)
    return state["stereo"]


def preview_stereo_settings(settings):
    """The stereo settings the preview draws with: the eyes at the preview photo's size (the output
    size is the export's)."""
    return dataclasses.replace(settings, render=dataclasses.replace(settings.render, size=None))


def draw_stereo(state: dict, derived, settings, max_side: int) -> tuple:
    """(picture, warnings, renderer info) of the stereo layout, as the export composes it (vr180:
    its two equirectangular eyes side by side), at most ``max_side`` pixels on the long side."""
    renderer = stereo_renderer(state, derived, settings)
    return renderer.preview(None, max_side), list(renderer.warnings), renderer.info()
