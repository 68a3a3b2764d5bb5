"""Add-on preferences: how depth is computed when no depth file is given.

The model and its input size are the core's ModelSettings fields (generated, see settings_props.py);
the operator's Model, left empty, uses this one.
"""
from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from depthstudio.source import ModelSettings

from . import engine
from . import settings_props as sp


def addon_prefs(context=None):
    """This add-on's preferences, or None when it is not registered as an add-on (scripts, tests)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


class DEPTHSTUDIO_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    route: EnumProperty(
        name="Run Models",
        items=(
            ("AUTO", "Automatic", "Inside Blender with ONNX Runtime when it can run the model, "
                                  "else the external executable"),
            ("BLENDER", "Inside Blender", "DepthStudio core with ONNX Runtime in Blender's Python (ONNX models only)"),
            ("EXTERNAL", "External Executable", "Run the `depthstudio` command line (any model, PyTorch included)"),
        ),
        default="AUTO",
    )
    executable: StringProperty(
        name="DepthStudio Executable",
        description="Path to the `depthstudio` command (empty: look it up on PATH)",
        subtype="FILE_PATH",
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "route")
        layout.prop(self, "executable")
        for name in MODEL_PROPERTIES:
            layout.prop(self, name)
        box = layout.box()
        box.label(text="ONNX Runtime in Blender: " + ("available" if engine.onnxruntime_available() else "not installed"))
        exe = engine.find_executable(self.executable)
        box.label(text="External executable: " + (exe or "not found"))
        box.label(text="da2-small is Apache-2.0; da2-base/large are CC-BY-NC-4.0 (non-commercial)")


MODEL_PROPERTIES = sp.generate(DEPTHSTUDIO_AP_preferences, ModelSettings, ("model", "input_size"))
