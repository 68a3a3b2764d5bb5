"""OpenGL contexts: headless (EGL, Mesa's llvmpipe where there is no GPU) or handed in by a GUI.

The scene (render/scene.py) draws into whatever moderngl context it is given; this module only
makes the offscreen one, with one clear error when no OpenGL 3.3 context can be made at all.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from depthstudio.errors import DepthStudioError

#: OpenGL version the shaders need (core profile 3.3: what Mesa llvmpipe and every GPU since 2010 give).
REQUIRED_VERSION = 330

_local = threading.local()


class RenderError(DepthStudioError):
    """No OpenGL context, or the GPU driver refused a resource."""


NO_CONTEXT_HELP = (
    "cannot create an OpenGL context for rendering ({reasons}). Headless rendering needs EGL with an "
    "OpenGL 3.3 driver: with no GPU, install Mesa's software renderer (Debian/Ubuntu: apt-get install "
    "libegl1 libgl1-mesa-dri libegl-mesa0); set DEPTHSTUDIO_GL_BACKEND=egl|x11 to choose a backend."
)


def create_context(backend: str | None = None):
    """A new standalone (offscreen) moderngl context; RenderError when none can be made.

    ``backend``: "egl" (headless, the default), or None/"x11" for the platform's default
    windowing-system context. DEPTHSTUDIO_GL_BACKEND overrides the default order.
    """
    try:
        import moderngl
    except ImportError:
        raise RenderError("rendering needs the moderngl package (pip install 'depthstudio[render]')") from None
    wanted = backend or os.environ.get("DEPTHSTUDIO_GL_BACKEND") or None
    order = [wanted] if wanted else ["egl", None]
    reasons = []
    for choice in order:
        kwargs: dict[str, Any] = {"require": REQUIRED_VERSION}
        if choice and choice != "x11":
            kwargs["backend"] = choice
        try:
            ctx = moderngl.create_standalone_context(**kwargs)
        except Exception as exc:  # moderngl raises plain Exception subclasses per platform
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reasons.append(f"{choice or 'default'}: {first}")
            continue
        return ctx
    raise RenderError(NO_CONTEXT_HELP.format(reasons="; ".join(reasons)))


def offscreen_context():
    """The calling thread's shared offscreen context (created on first use).

    OpenGL contexts belong to one thread; each thread that renders gets its own.
    """
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = create_context()
        _local.ctx = ctx
    return ctx


def renderer_name(ctx) -> str:
    """The driver's name, e.g. 'llvmpipe (LLVM 15.0.6, 256 bits)' or a GPU's."""
    return str(ctx.info.get("GL_RENDERER", "unknown"))


def is_software(ctx) -> bool:
    name = renderer_name(ctx).lower()
    return any(word in name for word in ("llvmpipe", "softpipe", "swrast", "lavapipe"))
