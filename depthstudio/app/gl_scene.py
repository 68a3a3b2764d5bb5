"""What the render thread does for the views, through the shared renderer (depthstudio.render).

Runs only on the render thread (depthstudio.app.render_service): the OpenGL context, the scene
of the current photo's view mesh, and the parallax renderer live in its ``state`` dict.
No Qt here.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

VIEW_BACKGROUND = (0.11, 0.115, 0.125)


def context(state: dict):
    if "ctx" not in state:
        from depthstudio.render.gl import offscreen_context

        state["ctx"] = offscreen_context()
    return state["ctx"]


def _release(state: dict, key: str) -> None:
    obj = state.pop(key, None)
    if obj is not None:
        obj.release()


def set_geometry(state: dict, gid: int, mesh, texture) -> None:
    """Upload the view mesh of the current photo (replacing the previous one)."""
    from depthstudio.render.layers import MeshLayer
    from depthstudio.render.scene import Scene

    ctx = context(state)
    _release(state, "scene")
    layer = MeshLayer.from_mesh(dataclasses.replace(mesh, texture=texture) if texture is not None else mesh, name="photo")
    state["scene"] = Scene(ctx, [layer])
    state["gid"] = gid


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


def draw_orbit(state: dict, derived, view, mode: str, size: tuple[int, int]) -> np.ndarray | None:
    """The 3D view: the view mesh from an orbiting camera, as mesh, points or wireframe."""
    import moderngl

    from depthstudio.render.camera_path import fit_intrinsics

    scene = state.get("scene")
    if scene is None:
        return None
    yaw, pitch, distance_scale, pan = view
    pose = orbit_pose(derived, yaw, pitch, distance_scale, pan)
    out = target(state, "orbit_target", size)
    k = fit_intrinsics(derived.preview_intrinsics, *size)
    ctx = context(state)
    if mode == "mesh":
        return out.render(scene, pose, k, VIEW_BACKGROUND)
    # Points and wireframe draw the same scene with another primitive / polygon mode.
    mvp = scene.matrices(pose, k)
    out.target.use()
    out.target.viewport = (0, 0, *size)
    out.target.clear(*VIEW_BACKGROUND, 1.0, depth=1.0)
    ctx.enable(moderngl.DEPTH_TEST)
    scene.program["mvp"].write(np.asarray(mvp, np.float32).T.tobytes())
    try:
        if mode == "wireframe":
            ctx.wireframe = True
            scene.draw(mvp, out.target, background=None, viewport=(0, 0, *size))
        else:
            ctx.point_size = max(1.0, 2.0 * min(size) / max(derived.preview_z.shape))
            for layer in getattr(scene, "_layers", []):  # the scene's vertex arrays, drawn as points
                layer.texture.use(location=0)
                layer.vao.render(moderngl.POINTS)
    finally:
        ctx.wireframe = False
    return out.read()


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
