"""Add-on preferences: how depth is computed when no depth file is given."""
from __future__ import annotations

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from . import engine


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
    default_model: StringProperty(
        name="Default Model",
        description="Catalogue name (da2-small, ...), a .onnx file or a transformers folder",
        default="da2-small",
    )
    input_size: IntProperty(
        name="Input Size", description="Shorter side the model sees (rounded to a multiple of 14)",
        default=518, min=140, max=2044, step=14,
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "route")
        layout.prop(self, "executable")
        layout.prop(self, "default_model")
        layout.prop(self, "input_size")
        box = layout.box()
        box.label(text="ONNX Runtime in Blender: " + ("available" if engine.onnxruntime_available() else "not installed"))
        exe = engine.find_executable(self.executable)
        box.label(text="External executable: " + (exe or "not found"))
        box.label(text="da2-small is Apache-2.0; da2-base/large are CC-BY-NC-4.0 (non-commercial)")
