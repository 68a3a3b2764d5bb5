"""DepthStudio for Blender: "Image to Depth Mesh" (Add > Mesh, File > Import, drop images).

Photos become textured, edge-cut depth meshes (or point clouds) and cameras that frame them like the
photos. Depth comes from depth files, the DepthStudio core with ONNX Runtime inside Blender, or an
external ``depthstudio`` executable (see preferences.py). The operator's settings are generated from
the core's settings classes (settings_props.py), so the core must be importable to register.
"""
from __future__ import annotations

import bpy


def _modules():
    try:
        from . import operators, preferences
    except ImportError as exc:  # the core, or a package it needs (pillow, ...), is missing
        from .engine import AddonError

        raise AddonError(f"the DepthStudio core is not installed in Blender's Python ({exc}); install the extension "
                         "zip that bundles it and its packages (see docs/blender.md)") from None
    return operators, preferences


def _classes():
    operators, preferences = _modules()
    return (preferences.DEPTHSTUDIO_AP_preferences, *operators.classes)


def register():
    operators, _ = _modules()  # first: a missing core is one clear message
    from depthstudio.geometry import depth

    from . import blender_data

    depth.exr_fallback = blender_data.read_exr  # Blender's Python has no OpenEXR; Blender reads EXR itself
    for cls in _classes():
        bpy.utils.register_class(cls)
    for menu, func in operators.MENUS:
        getattr(bpy.types, menu).append(func)


def unregister():
    from depthstudio.geometry import depth

    from . import engine

    operators, _ = _modules()
    for menu, func in reversed(operators.MENUS):
        getattr(bpy.types, menu).remove(func)
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
    depth.exr_fallback = None
    engine.clear_caches()
