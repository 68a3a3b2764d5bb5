"""Rendering: one OpenGL scene (moderngl) for the GUI viewport, parallax previews and video export.

    gl.py           offscreen contexts (EGL; Mesa llvmpipe without a GPU), RenderError
    layers.py       MeshLayer (textured triangles), edge zones, grid layers from depth
    scene.py        Scene (GL resources + draw into any framebuffer), OffscreenRenderer (read back)
    camera_path.py  CameraPose, presets, keyframe paths, pinhole projection
    fill.py         revealed-area fill: background layer behind foreground edges
    parallax.py     ParallaxSettings, prepare_layers, ParallaxRenderer, render_parallax
    dof.py, lens.py depth of field (see those modules)

Nothing here imports moderngl, cv2 or av at import time.
"""
