"""DepthStudio for Blender: "Image to Depth Mesh" (Add > Mesh, File > Import, drop an image).

A photo becomes a textured, edge-cut depth mesh (or point cloud) and a camera that frames it like
the photo. Depth comes from a depth file, the DepthStudio core with ONNX Runtime inside Blender,
or an external ``depthstudio`` executable (see preferences.py).
"""
from __future__ import annotations

import bpy

from . import operators, preferences

_classes = (preferences.DEPTHSTUDIO_AP_preferences, *operators.classes)


def register():
    from depthstudio.geometry import depth

    from . import blender_data

    depth.exr_fallback = blender_data.read_exr  # Blender's Python has no OpenEXR; Blender reads EXR itself
    for cls in _classes:
        bpy.utils.register_class(cls)
    for menu, func in operators.MENUS:
        getattr(bpy.types, menu).append(func)


def unregister():
    for menu, func in reversed(operators.MENUS):
        getattr(bpy.types, menu).remove(func)
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
    from depthstudio.geometry import depth

    from . import engine

    depth.exr_fallback = None
    engine.clear_caches()
