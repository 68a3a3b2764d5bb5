"""One OpenGL scene for the GUI viewport, the parallax preview and video export.

``Scene`` owns the GL resources of textured layers and draws them into *any* framebuffer of its
context (a Qt QOpenGLWidget's, via ``moderngl.create_context()`` + ``ctx.detect_framebuffer()``,
or an offscreen one). ``OffscreenRenderer`` adds a multisampled offscreen target and reads frames
back as numpy arrays. What the GUI previews is therefore exactly what gets exported.

    ctx = offscreen_context()
    scene = Scene(ctx, [MeshLayer.from_mesh(depth_mesh)])
    frames = OffscreenRenderer(ctx, (1920, 1080))
    rgb = frames.render(scene, CameraPose(), intrinsics)      # (1080, 1920, 3) uint8
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from depthstudio.geometry.camera import Intrinsics
from depthstudio.render.camera_path import CameraPose, projection_matrix
from depthstudio.render.gl import RenderError, is_software
from depthstudio.render.layers import MeshLayer

VERTEX_SHADER = """
#version 330
uniform mat4 mvp;
in vec3 in_position;
in vec2 in_uv;
out vec2 v_uv;
void main() {
    v_uv = in_uv;
    gl_Position = mvp * vec4(in_position, 1.0);
}
"""

FRAGMENT_SHADER = """
#version 330
uniform sampler2D photo;
in vec2 v_uv;
out vec4 colour;
void main() {
    colour = vec4(texture(photo, v_uv).rgb, 1.0);
}
"""


#: How Scene.draw shows the layers.
STYLES = ("mesh", "points", "wireframe")


class _GpuLayer:
    def __init__(self, ctx, program, layer: MeshLayer, mipmaps: bool = True):
        import moderngl

        self.name = layer.name
        self.faces = layer.face_count
        interleaved = np.hstack([layer.vertices.astype(np.float32), layer.uvs.astype(np.float32)])
        self.vbo = ctx.buffer(np.ascontiguousarray(interleaved).tobytes())
        self.ibo = ctx.buffer(np.ascontiguousarray(layer.faces, dtype=np.int32).tobytes())
        self.vao = ctx.vertex_array(program, [(self.vbo, "3f 2f", "in_position", "in_uv")], self.ibo, index_element_size=4)
        tex = np.ascontiguousarray(layer.texture[..., :3], dtype=np.uint8)
        h, w = tex.shape[:2]
        limit = int(ctx.info.get("GL_MAX_TEXTURE_SIZE", 16384))
        if max(w, h) > limit:
            raise RenderError(f"texture of {w}x{h} is larger than this GPU's limit of {limit} pixels per side")
        # Rows go bottom-up in GL: the flip makes v = 1 - y/H address the photo's row y.
        self.texture = ctx.texture((w, h), 3, np.ascontiguousarray(tex[::-1]).tobytes(), alignment=1)
        self.texture.repeat_x = self.texture.repeat_y = False
        if mipmaps:
            self.texture.build_mipmaps()
            self.texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        else:
            self.texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
        if not is_software(ctx):  # anisotropic filtering is cheap on GPUs, costly in llvmpipe
            try:
                self.texture.anisotropy = 8.0
            except Exception:  # not every driver has it
                pass
        self.depth_range = layer.depth_range()

    def release(self) -> None:
        for obj in (self.vao, self.vbo, self.ibo, self.texture):
            obj.release()


class Scene:
    """Textured layers in the camera frame, drawn with a depth test (nearest surface wins).

    ``mipmaps=False`` skips building texture mipmaps (a sizeable share of a video frame's upload in
    software GL): for views that see the layers at about the photo's own scale, such as the
    stereo eyes (a sideways move, no zoom), where minification filtering changes nothing.
    """

    def __init__(self, ctx, layers: Sequence[MeshLayer] = (), mipmaps: bool = True):
        self.ctx = ctx
        self.mipmaps = mipmaps
        try:
            self.program = ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        except Exception as exc:
            raise RenderError(f"the OpenGL driver could not compile the scene's shaders: {exc}") from None
        self._layers: list[_GpuLayer] = []
        for layer in layers:
            self.add(layer)

    def add(self, layer: MeshLayer) -> None:
        if layer.face_count:
            self._layers.append(_GpuLayer(self.ctx, self.program, layer, self.mipmaps))

    def clear(self) -> None:
        for layer in self._layers:
            layer.release()
        self._layers = []

    def release(self) -> None:
        self.clear()
        self.program.release()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self._layers]

    @property
    def face_count(self) -> int:
        return sum(layer.faces for layer in self._layers)

    def depth_range(self) -> tuple[float, float]:
        near = min((layer.depth_range[0] for layer in self._layers), default=math.inf)
        far = max((layer.depth_range[1] for layer in self._layers), default=0.0)
        if not (math.isfinite(near) and far > 0):
            return 0.1, 100.0
        return near, far

    def clip_planes(self, pose: CameraPose) -> tuple[float, float]:
        """Near and far clip distances that hold the scene from ``pose`` with good depth precision."""
        near, far = self.depth_range()
        travel = float(np.linalg.norm(pose.position))
        return max(near * 0.05, far * 1e-5), (far + travel) * 2.0

    def matrices(self, pose: CameraPose, intrinsics: Intrinsics) -> np.ndarray:
        """The 4x4 model-view-projection for a pose seen through ``intrinsics`` (the output's)."""
        near, far = self.clip_planes(pose)
        return projection_matrix(pose.intrinsics(intrinsics), near, far) @ pose.view_matrix()

    def draw(self, mvp: np.ndarray, framebuffer=None, background: Sequence[float] | None = (0.0, 0.0, 0.0),
             viewport: tuple[int, int, int, int] | None = None, style: str = "mesh", point_size: float = 1.0) -> None:
        """Draw every layer into ``framebuffer`` (default: the context's current one).

        ``background`` (RGB 0..1) clears colour and depth first; None draws over what is there.
        ``style`` is "mesh" (textured triangles), "points" (the vertices, ``point_size`` pixels)
        or "wireframe" (the triangles' edges).
        """
        if style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
        import moderngl

        ctx = self.ctx
        if framebuffer is not None:
            framebuffer.use()
        fbo = framebuffer or ctx.fbo
        if viewport is not None:
            fbo.viewport = viewport
        if background is not None:
            fbo.clear(*background, 1.0, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE)
        self.program["mvp"].write(np.asarray(mvp, np.float32).T.tobytes())  # GL wants column-major
        mode = moderngl.POINTS if style == "points" else moderngl.TRIANGLES
        if style == "points":
            ctx.point_size = float(point_size)
        ctx.wireframe = style == "wireframe"
        try:
            for layer in self._layers:
                layer.texture.use(location=0)
                layer.vao.render(mode)
        finally:
            ctx.wireframe = False

    def draw_pose(self, pose: CameraPose, intrinsics: Intrinsics, framebuffer=None, **kwargs) -> None:
        self.draw(self.matrices(pose, intrinsics), framebuffer, **kwargs)


class OffscreenRenderer:
    """A multisampled offscreen target of ``size`` = (width, height) that renders scenes to arrays."""

    def __init__(self, ctx, size: tuple[int, int], samples: int = 4):
        width, height = (int(v) for v in size)
        if width < 1 or height < 1:
            from depthstudio.errors import SettingsError

            raise SettingsError(f"render size must be positive, got {width}x{height}")
        limit = int(ctx.info.get("GL_MAX_RENDERBUFFER_SIZE", 16384))
        if max(width, height) > limit:
            raise RenderError(f"render size {width}x{height} is over this GPU's limit of {limit} pixels per side")
        self.ctx = ctx
        self.size = (width, height)
        self.samples = max(0, min(int(samples), int(ctx.max_samples)))
        if self.samples == 1:
            self.samples = 0
        try:
            self.target = ctx.framebuffer(
                color_attachments=[ctx.renderbuffer(self.size, 4, samples=self.samples)],
                depth_attachment=ctx.depth_renderbuffer(self.size, samples=self.samples),
            )
            self.resolve = ctx.framebuffer(color_attachments=[ctx.renderbuffer(self.size, 4)]) if self.samples else self.target
        except Exception as exc:
            raise RenderError(f"cannot create a {width}x{height} render target: {exc}") from None
        self._buffer = bytearray(width * height * 3)

    def render(self, scene: Scene, pose: CameraPose, intrinsics: Intrinsics,
               background: Sequence[float] = (0.0, 0.0, 0.0), style: str = "mesh", point_size: float = 1.0) -> np.ndarray:
        """(H, W, 3) uint8 RGB, top row first. ``intrinsics`` is the output camera at the start
        pose (see camera_path.fit_intrinsics); the pose moves and zooms it. ``style``: see Scene.draw."""
        if (intrinsics.width, intrinsics.height) != self.size:
            intrinsics = intrinsics.scaled(*self.size)
        scene.draw_pose(pose, intrinsics, self.target, background=background, viewport=(0, 0, *self.size),
                        style=style, point_size=point_size)
        return self.read()

    def read(self) -> np.ndarray:
        if self.samples:
            self.ctx.copy_framebuffer(self.resolve, self.target)
        self.resolve.read_into(self._buffer, components=3, alignment=1)
        w, h = self.size
        return np.frombuffer(self._buffer, np.uint8).reshape(h, w, 3)[::-1].copy()

    def release(self) -> None:
        for fbo in {id(self.target): self.target, id(self.resolve): self.resolve}.values():
            for att in fbo.color_attachments:
                att.release()
            if fbo.depth_attachment is not None:
                fbo.depth_attachment.release()
            fbo.release()

    def __enter__(self) -> OffscreenRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
