"""bpy properties generated from the core's settings metadata, and read back into settings objects.

Every setting the add-on shows is a field of a core settings class (CameraSettings, DepthMapping,
MeshSettings, DepthFileSettings, ModelSettings, ExportSettings). :func:`generate` turns each field's
spec into a bpy property of an operator or preferences class; :func:`read` makes the settings object
back from the properties; :func:`write` puts a settings object (a settings file) into them. Nothing
here holds a default, a range, a label or a check of its own: all come from the spec.

Rules:

- name: the command-line flag without ``--``, ``-`` as ``_`` (``--fov`` -> ``fov``, ``--focal-mm`` ->
  ``focal_mm``, ``--depth-kind`` -> ``depth_kind``); label, description, min/max, step, precision,
  enum items and default come from the spec.
- "auto" (a field that may be None, e.g. ``fov``: None means EXIF, the model's estimate or 60 degrees):
  * a number whose allowed range excludes 0 (fov, focal_mm, fx, fy, max_faces): 0 means auto;
  * any other number (cx, cy, edge_cut): a ``use_<name>`` checkbox beside it, unticked means auto.
    A script that passes the number alone (``cx=250.3``) means it: ``use_cx`` is then taken as ticked;
  * a path or text (depth): empty means auto;
  * a set of choices (format): none ticked means auto.
- fields of one exclusive group (fov / focal_mm / fx): giving two is an error naming both, as on the
  command line (bpy runs update callbacks for a script's arguments too, so clearing one when the other
  is set would silently pick one); :func:`conflicts` lets the panel mark them.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from depthstudio.errors import SettingsError
from depthstudio.settings import FieldInfo, Settings, specs

#: Hidden operator property holding the last run's resolved values ({property name: value}, JSON):
#: ticking a ``use_<name>`` box starts from the value the last run used (e.g. cx = W/2).
RESOLVED = "resolved"

#: owner class name -> {property name: (settings class, field info)}. By name: update callbacks get the
#: operator's properties struct (an RNA type named like the operator class), not the operator.
_FIELDS: dict[str, dict[str, tuple[type, FieldInfo]]] = {}
#: owner class name -> {property name: what an empty value means} for text fields "auto" in bpy only
_EMPTY_AUTO: dict[str, dict[str, str]] = {}


def _key(owner) -> str:
    return (owner if isinstance(owner, type) else type(owner)).__name__


def prop_name(fi: FieldInfo) -> str:
    """The bpy property name of a field: its command-line flag, '-' as '_'."""
    return fi.flag.lstrip("-").replace("-", "_")


def zero_is_auto(fi: FieldInfo) -> bool:
    """An optional number whose allowed range excludes 0: 0 stands for None."""
    s = fi.spec
    return bool(fi.optional and fi.type in (int, float) and s.minimum is not None
                and (s.minimum > 0 or (s.minimum == 0 and s.min_exclusive)))


def uses_toggle(fi: FieldInfo) -> bool:
    """An optional number that 0 cannot stand in for: it gets a ``use_<name>`` checkbox."""
    return fi.optional and fi.type in (int, float) and not zero_is_auto(fi)


def _eps(fi: FieldInfo) -> float:
    if fi.type is int:
        return 1
    return 10.0 ** -(fi.spec.decimals if fi.spec.decimals is not None else 3)


def _choice_label(value: str) -> str:
    return str(value).replace("-", " ").replace("_", " ").title()


def _description(fi: FieldInfo, auto: str | None) -> str:
    s = fi.spec
    text = (s.help[:1].upper() + s.help[1:]).rstrip(".") if s.help else s.label
    if s.unit:
        text += f" ({s.unit})"
    if auto is not None:
        text += f". {auto}: {s.auto or 'automatic'}"
    if s.flag != "":
        text += f". Command line: {fi.flag}"
    return text


def _number(fi: FieldInfo, update) -> bpy.props._PropertyDeferred:
    s = fi.spec
    kw: dict = {"name": s.label, "update": update}
    lo = s.minimum
    hi = s.maximum
    if zero_is_auto(fi):
        kw["description"] = _description(fi, "0")
        kw["min"] = 0
        kw["soft_min"] = lo + _eps(fi) if s.min_exclusive else lo
        default = fi.default if fi.default is not None else 0
    else:
        kw["description"] = _description(fi, "Off" if uses_toggle(fi) else None)
        if lo is not None:
            kw["min"] = lo + _eps(fi) if s.min_exclusive else lo
        default = fi.default
        if default is None:  # shown greyed out until ticked; ticking fills in the last run's value
            default = kw.get("min", 0)
    if hi is not None:
        kw["max"] = hi - _eps(fi) if s.max_exclusive else hi
    if fi.type is int:
        kw["default"] = int(default)
        if s.step:
            kw["step"] = int(s.step)
        return IntProperty(**kw)
    kw["default"] = float(default)
    if s.step:
        kw["step"] = max(1, int(round(s.step * 100)))  # bpy's float step is in hundredths
    if s.decimals is not None:
        kw["precision"] = s.decimals
    return FloatProperty(**kw)


def _annotations(fi: FieldInfo, empty_auto: str | None) -> dict:
    name = prop_name(fi)
    s = fi.spec
    if fi.spec.multiple:
        items = [(c, _choice_label(c), "") for c in s.choices or ()]
        return {name: EnumProperty(name=s.label, description=_description(fi, "None ticked" if fi.optional else None),
                                   items=items, options={"ENUM_FLAG"}, default=set(fi.default or ()))}
    if s.choices is not None:
        items = [(str(c), _choice_label(c), "") for c in s.choices]
        return {name: EnumProperty(name=s.label, description=_description(fi, None), items=items,
                                   default=str(fi.default))}
    if fi.type is bool:
        return {name: BoolProperty(name=s.label, description=_description(fi, None), default=bool(fi.default))}
    if fi.type in (int, float):
        out = {name: _number(fi, _value_update(fi))}
        if uses_toggle(fi):
            out["use_" + name] = BoolProperty(name=f"Use {s.label}", default=fi.default is not None,
                                              description=f"Off: {s.auto or 'automatic'}",
                                              update=_toggle_update(fi))
        return out
    auto = "Empty" if (fi.optional or empty_auto) else None
    if empty_auto:
        fi = dataclasses.replace(fi, spec=dataclasses.replace(fi.spec, auto=empty_auto))
    default = "" if empty_auto or fi.default is None else str(fi.default)
    return {name: StringProperty(name=s.label, description=_description(fi, auto), default=default,
                                 subtype="FILE_PATH" if fi.type is Path else "NONE")}


def generate(owner: type, cls: type, include: tuple[str, ...] | None = None,
             empty_auto: dict[str, str] | None = None) -> list[str]:
    """Add bpy properties for the fields of ``cls`` (all, or those named in ``include``) to ``owner``'s
    annotations (call before registering ``owner``). ``empty_auto`` names text fields that are
    left empty in bpy to mean something the add-on fills in (the model: the preferences' model).
    Returns the property names, in field order."""
    fields = _FIELDS.setdefault(_key(owner), {})
    empties = _EMPTY_AUTO.setdefault(_key(owner), {})
    annotations = owner.__dict__.get("__annotations__")
    if annotations is None:
        annotations = {}
        owner.__annotations__ = annotations
    names = []
    for fi in specs(cls):
        if include is not None and fi.name not in include:
            continue
        name = prop_name(fi)
        fields[name] = (cls, fi)
        if empty_auto and fi.name in empty_auto:
            empties[name] = empty_auto[fi.name]
        annotations.update(_annotations(fi, (empty_auto or {}).get(fi.name)))
        names.append(name)
    return names


def field(owner, name: str) -> FieldInfo | None:
    entry = _FIELDS.get(_key(owner), {}).get(name)
    return entry[1] if entry else None


def _is_set(holder, name: str) -> bool:
    props = getattr(holder, "properties", holder)  # an operator's properties, or the struct itself
    try:
        return bool(props.is_property_set(name))
    except (TypeError, AttributeError):
        return False


def is_on(holder, fi: FieldInfo) -> bool:
    """Whether an optional number with a checkbox counts (ticked, or given alone by a script)."""
    name = prop_name(fi)
    if getattr(holder, "use_" + name):
        return True
    return _is_set(holder, name) and not _is_set(holder, "use_" + name)


def value(holder, fi: FieldInfo):
    """The settings value a property stands for (None for auto)."""
    name = prop_name(fi)
    v = getattr(holder, name)
    if fi.spec.multiple:
        chosen = tuple(c for c in fi.spec.choices or () if c in v)
        return chosen or (None if fi.optional else chosen)
    if fi.type is bool:
        return bool(v)
    if fi.type in (int, float):
        if (zero_is_auto(fi) and v == 0) or (uses_toggle(fi) and not is_on(holder, fi)):
            return None
        return fi.type(v)
    if fi.type is Path:
        return Path(bpy.path.abspath(v)) if v else None
    return v if v or not fi.optional else None


def _exact(v: float, base) -> float:
    """bpy keeps float32: the base's (a settings file's) exact value when the property holds its float32
    rounding, else the shortest decimal that float32 value prints as (0.02, not 0.0199999995)."""
    import numpy as np

    if isinstance(base, (int, float)) and np.float32(base) == np.float32(v):
        return float(base)
    return float(str(np.float32(v)))


def read(holder, cls: type, base: Settings | None = None):
    """``base`` (or the defaults) with the values of ``holder``'s properties for ``cls``, validated."""
    empties = _EMPTY_AUTO.get(_key(holder), {})
    values, given = {}, []
    for name, (kind, fi) in _FIELDS.get(_key(holder), {}).items():
        if kind is not cls:
            continue
        v = value(holder, fi)
        if name in empties and not v:
            continue  # empty: keep the base's value (the preferences' model)
        if fi.type is float and v is not None:
            v = _exact(v, getattr(base, fi.name, None))
        values[fi.name] = v
        if fi.spec.exclusive and v is not None:
            given.append(fi)
    groups: dict[str, list[FieldInfo]] = {}
    for fi in given:
        groups.setdefault(fi.spec.exclusive, []).append(fi)
    for members in groups.values():
        if len(members) > 1:
            raise SettingsError(f"{prop_name(members[0])} and {prop_name(members[1])} cannot be used together: "
                                "choose one")
    settings = base if base is not None else cls()
    return dataclasses.replace(settings, **values).validate()


def write(holder, settings: Settings, keep=()) -> None:
    """Put ``settings`` into ``holder``'s properties (all of its class's, except the names in ``keep``)."""
    fields = _FIELDS.get(_key(holder), {})
    # a kept member of an exclusive group replaces the whole group (a script's fov beats the file's fx)
    kept = {fi.spec.exclusive for name, (kind, fi) in fields.items()
            if name in keep and kind is type(settings) and fi.spec.exclusive and value(holder, fi) is not None}
    for name, (kind, fi) in fields.items():
        if kind is not type(settings) or name in keep:
            continue
        v = None if fi.spec.exclusive in kept else getattr(settings, fi.name)
        if fi.spec.multiple:
            setattr(holder, name, set(v or ()))
        elif fi.type in (int, float):
            if uses_toggle(fi):  # the box first: ticking it must not overwrite the value written next
                setattr(holder, "use_" + name, v is not None)
            if v is not None:
                setattr(holder, name, fi.type(v))
            elif zero_is_auto(fi):
                setattr(holder, name, 0)
        elif fi.type is bool:
            setattr(holder, name, bool(v))
        else:
            setattr(holder, name, "" if v is None else str(v))


def given_names(holder) -> set[str]:
    """The generated properties a caller set explicitly (a script's keyword arguments)."""
    out = set()
    for name, (_, fi) in _FIELDS.get(_key(holder), {}).items():
        if _is_set(holder, name) or (uses_toggle(fi) and _is_set(holder, "use_" + name)):
            out.add(name)
    return out


def remember(holder, resolved: dict) -> None:
    """Record the values the last run resolved (for the use_<name> boxes and the panel's labels)."""
    if hasattr(holder, RESOLVED):
        setattr(holder, RESOLVED, json.dumps(resolved))


def resolved(holder) -> dict:
    try:
        return json.loads(getattr(holder, RESOLVED, "") or "{}")
    except ValueError:
        return {}


# -- panel behaviour (update callbacks run on edits in the UI, and for a script's arguments too) ------
def _set_raw(holder, name: str, v) -> None:
    """Set a property without running its update callback."""
    try:
        getattr(holder, "properties", holder)[name] = v
    except (TypeError, KeyError, AttributeError):
        setattr(holder, name, v)


def _value_update(fi):
    name = prop_name(fi)

    def update(self, context):
        if uses_toggle(fi) and not getattr(self, "use_" + name):
            _set_raw(self, "use_" + name, True)  # editing the number means it (no update: keeps the value)

    return update


def _toggle_update(fi):
    name = prop_name(fi)

    def update(self, context):
        if getattr(self, "use_" + name):
            last = resolved(self).get(name)
            if last is not None:
                _set_raw(self, name, fi.type(last))  # start from what the last run used

    return update


def conflicts(holder) -> set[str]:
    """Properties of one exclusive group that are given together (the panel marks them red)."""
    groups: dict[str, list[str]] = {}
    for name, (_, fi) in _FIELDS.get(_key(holder), {}).items():
        if fi.spec.exclusive and value(holder, fi) is not None:
            groups.setdefault(fi.spec.exclusive, []).append(name)
    return {n for names in groups.values() if len(names) > 1 for n in names}


def draw(layout, holder, name: str, alert: bool = False) -> None:
    """One property in a panel: numbers with a checkbox get it at the left of their row."""
    fi = field(holder, name)
    if fi is not None and uses_toggle(fi):
        row = layout.row(align=True, heading=fi.spec.label)
        row.prop(holder, "use_" + name, text="")
        sub = row.row(align=True)
        sub.active = getattr(holder, "use_" + name)
        sub.alert = alert
        sub.prop(holder, name, text="")
    else:
        layout.alert = alert
        layout.prop(holder, name)
