"""Import this FIRST in a check script to see only what Blender itself ships with its Python.

The test venv also holds the DepthStudio core, onnxruntime and pillow (for other checks); a real
Blender has none of them, so checks of the extension zip hide them: sys.path keeps bpy, numpy and
the packages Blender bundles, and the editable-install finder of the repository is removed.
"""
import os
import sys
import tempfile

SHIPPED = ("bpy", "numpy", "numpy.libs", "requests", "certifi", "idna", "urllib3", "charset_normalizer",
           "zstandard", "Cython")
_repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_site = [p for p in sys.path if p.rstrip("/\\").endswith("site-packages")]
_shadow = tempfile.mkdtemp(prefix="blender-shipped-")
for _dir in _site:
    for _name in SHIPPED:
        _src = os.path.join(_dir, _name)
        if os.path.exists(_src) and not os.path.exists(os.path.join(_shadow, _name)):
            os.symlink(_src, os.path.join(_shadow, _name))
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
sys.path[:] = [p for p in sys.path if p not in _site and os.path.abspath(p or ".") != _repo] + [_shadow]
for _mod in [m for m in sys.modules if m.split(".")[0] in ("depthstudio", "onnxruntime", "PIL")]:
    del sys.modules[_mod]
