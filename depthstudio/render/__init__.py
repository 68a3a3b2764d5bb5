"""Rendering: one OpenGL scene (moderngl) for the GUI viewport, parallax previews and video export.

    gl.py           offscreen contexts (EGL; Mesa llvmpipe without a GPU), RenderError
    layers.py       MeshLayer (textured triangles), edge zones, grid layers from depth
    scene.py        Scene (GL resources + draw into any framebuffer), OffscreenRenderer (read back)
    camera_path.py  CameraPose, presets, keyframe paths, pinhole projection
    fill.py         revealed-area fill: background layer behind foreground edges
    parallax.py     ParallaxSettings, prepare_layers, ParallaxRenderer, render_parallax
    stereo.py       StereoSettings, StereoRenderer (two off-axis eyes, layouts, anaglyphs, quilts), render_stereo
    vr180.py        VR180 photo XMP (GPano + GImage) and MP4 spherical boxes (st3d, sv3d), written and read
    dof.py, lens.py depth of field (see those modules)

Nothing here imports moderngl, cv2 or av at import time.
"""
