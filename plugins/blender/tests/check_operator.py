"""Runs INSIDE Blender: install the extension, run "Image to Depth Mesh" as a plan says, report JSON.

    python check_operator.py PLAN.json

PLAN: {"shipped_only": bool,           # hide the test venv's extra packages (a real Blender has none)
       "install": "folder" | "zip", "zip": path,
       "prefs": {"route": ..., "executable": ...},
       "runs": [{"props": {...operator properties...}, "reset": bool, "prefs": {...}}, ...],
       "unregister": bool}
Prints one line "RESULT <json>": {"runs": [describe()...], "core_file": ..., "unregister": {...}}.
"""
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
with open(sys.argv[1], encoding="utf-8") as _f:
    PLAN = json.load(_f)
if PLAN.get("shipped_only"):
    importlib.import_module("blender_shipped_only")  # must come before bpy and anything else

import blender_checks as bc  # noqa: E402
import bpy  # noqa: E402


def reset_data():
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.cameras, bpy.data.materials,
                       bpy.data.images, bpy.data.node_groups):
        for item in list(collection):
            collection.remove(item)


def operator_properties():
    """The operator's property names, its label, and the FileHandler's extensions (when registered)."""
    try:
        rna = bpy.ops.depthstudio.image_to_depth_mesh.get_rna_type()
    except (AttributeError, KeyError):
        return False
    handler = getattr(bpy.types, "DEPTHSTUDIO_FH_image_to_depth_mesh", None)
    return {
        "names": sorted(p.identifier for p in rna.properties if p.identifier != "rna_type"),
        "label": rna.name,
        "file_extensions": handler.bl_file_extensions.split(";") if handler else [],
        "file_handler_operator": handler.bl_import_operator if handler else "",
    }


def registration_state() -> dict:
    importlib.import_module("addon_utils")

    def menu_has(menu):
        draw = getattr(getattr(bpy.types, menu), "draw", None)
        funcs = getattr(draw, "_draw_funcs", []) if draw else []
        return any("depthstudio" in (getattr(f, "__module__", "") or "") for f in funcs)

    return {
        "operator": hasattr(bpy.types, "DEPTHSTUDIO_OT_image_to_depth_mesh"),
        "operator_properties": operator_properties(),
        "file_handler": hasattr(bpy.types, "DEPTHSTUDIO_FH_image_to_depth_mesh"),
        "preferences": bc.MODULE in bpy.context.preferences.addons
        and bpy.context.preferences.addons[bc.MODULE].preferences is not None,
        "add_menu": menu_has("VIEW3D_MT_mesh_add"),
        "import_menu": menu_has("TOPBAR_MT_file_import"),
        "enabled": bc.MODULE in bpy.context.preferences.addons,
    }


def main():
    bc.clear_scene()
    out = {"blender": bpy.app.version_string}
    if PLAN.get("shipped_only"):
        try:
            importlib.import_module("depthstudio")
            out["core_before_install"] = True
        except ImportError:
            out["core_before_install"] = False
    if PLAN.get("install", "folder") == "zip":
        bc.install_from_zip(PLAN["zip"])
    else:
        bc.install_from_folder()
    out["registered"] = registration_state()
    prefs = bc.prefs()
    for key, value in PLAN.get("prefs", {}).items():
        setattr(prefs, key, value)
    reset_data()
    runs = []
    for run in PLAN.get("runs", []):
        if run.get("reset"):
            reset_data()
        for key, value in run.get("prefs", {}).items():
            setattr(prefs, key, value)
        if "unit_scale" in run:
            bpy.context.scene.unit_settings.scale_length = run["unit_scale"]
        runs.append(bc.run_and_describe(truth=run.get("truth"), **run["props"]))
        bpy.context.scene.unit_settings.scale_length = 1.0
    out["runs"] = runs
    try:
        import depthstudio

        out["core_file"] = depthstudio.__file__
    except ImportError:
        out["core_file"] = None
    if PLAN.get("unregister"):
        bc.disable()
        out["unregistered"] = registration_state()
        try:
            bpy.ops.depthstudio.image_to_depth_mesh.poll()
            out["operator_callable_after_unregister"] = True
        except AttributeError:
            out["operator_callable_after_unregister"] = False
        bc.enable()
        out["reregistered"] = registration_state()
    bc.emit(out)


main()
