"""One definition of every setting.

Each stage's settings are one dataclass deriving from :class:`Settings`; each field is made with
:func:`setting`, which records its label, unit, range or choices, help text and command-line flag
as field metadata. Everything else is generated from that metadata:

- ``Settings.validate()`` checks every field (and nested settings) and names field, value and range;
- ``to_dict()`` / ``from_dict()`` (versioned, plain JSON) serve settings files, QSettings and camera.json;
- :func:`add_flags` / :func:`from_args` make and read the command-line flags;
- the GUI's editors and the Blender add-on's properties read :func:`specs` of the same classes.

No front end keeps a default, a range or a check of its own.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from depthstudio.errors import InputError, SettingsError

#: Version of the settings-file layout; bumped when a field is renamed or its meaning changes.
SETTINGS_VERSION = 1
SETTINGS_SUFFIX = ".settings.json"

S = TypeVar("S", bound="Settings")


@dataclass(frozen=True)
class Spec:
    """What a front end needs to know to show, edit and check one field."""

    label: str
    help: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple | None = None
    multiple: bool = False  # a tuple of choices (e.g. export formats)
    flag: str | None = None  # the command-line flag; None: --field-name; "" : no flag
    metavar: str | None = None
    exclusive: str | None = None  # fields sharing a group name are mutually exclusive on the command line
    auto: str | None = None  # what None means, for fields that may be None ("from EXIF", "the photo's size")
    step: float | None = None  # GUI spin-box step
    decimals: int | None = None
    parse: Callable[[str], Any] | None = None  # command-line text -> value (for tuples and other shapes)
    show: Callable[[Any], str] | None = None  # value -> command-line text (inverse of parse)
    advanced: bool = False  # hidden behind "advanced" in the GUI and the add-on

    def range_text(self) -> str:
        lo = "" if self.minimum is None else f"{'>' if self.min_exclusive else '>='} {self.minimum:g}"
        hi = "" if self.maximum is None else f"{'<' if self.max_exclusive else '<='} {self.maximum:g}"
        return " and ".join(t for t in (lo, hi) if t)


def setting(default: Any = dataclasses.MISSING, *, label: str, help: str = "", unit: str = "",
            minimum: float | None = None, maximum: float | None = None, min_exclusive: bool = False,
            max_exclusive: bool = False, choices: tuple | None = None, multiple: bool = False,
            flag: str | None = None, metavar: str | None = None, exclusive: str | None = None,
            auto: str | None = None, step: float | None = None, decimals: int | None = None,
            parse: Callable[[str], Any] | None = None, show: Callable[[Any], str] | None = None,
            advanced: bool = False, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its :class:`Spec` in the metadata."""
    spec = Spec(label, help, unit, minimum, maximum, min_exclusive, max_exclusive,
                tuple(choices) if choices is not None else None, multiple, flag, metavar, exclusive, auto,
                step, decimals, parse, show, advanced)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"setting": spec})
    return dataclasses.field(default=default, metadata={"setting": spec})


def nested(cls: type, **kwargs: Any) -> Any:
    """A field holding another stage's settings (e.g. the parallax path inside parallax settings)."""
    return dataclasses.field(default_factory=lambda: cls(**kwargs))


@dataclass(frozen=True)
class FieldInfo:
    """One field of a settings class: its name, Python type and spec."""

    name: str
    type: Any  # the type without None (float, int, bool, str, Path, tuple)
    optional: bool  # None allowed
    default: Any
    spec: Spec

    @property
    def flag(self) -> str:
        return self.spec.flag if self.spec.flag is not None else "--" + self.name.replace("_", "-")


def _resolve(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), len(args) < len(typing.get_args(hint))
    return hint, False


def specs(cls: type) -> list[FieldInfo]:
    """Every :func:`setting` field of a settings class, in order (nested settings are not included)."""
    cached = cls.__dict__.get("_field_infos")
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("setting")
        if spec is None:
            continue
        kind, optional = _resolve(hints.get(f.name, Any))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
        origin = typing.get_origin(kind)
        out.append(FieldInfo(f.name, origin or kind, optional or default is None, default, spec))
    cls._field_infos = out  # type: ignore[attr-defined]
    return out


def nested_fields(cls: type) -> list[tuple[str, type[Settings]]]:
    """(name, settings class) of the fields that hold other settings."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind, _ = _resolve(hints.get(f.name, Any))
        if isinstance(kind, type) and issubclass(kind, Settings):
            out.append((f.name, kind))
    return out


def info(cls: type, name: str) -> FieldInfo:
    for fi in specs(cls):
        if fi.name == name:
            return fi
    raise KeyError(f"{cls.__name__} has no setting {name!r}")


def _describe(fi: FieldInfo, owner: str) -> str:
    return f"{fi.spec.label.lower()} ({owner}{fi.name.replace('_', '-')})" if fi.spec.flag != "" else fi.spec.label.lower()


def check_value(fi: FieldInfo, value: Any, owner: str = "--") -> Any:
    """The value, coerced to the field's type, or a SettingsError naming field, value and range."""
    what = _describe(fi, owner)
    if value is None:
        if fi.optional:
            return None
        raise SettingsError(f"{what} needs a value")
    kind = fi.type
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise SettingsError(f"{what} must be true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise SettingsError(f"{what} must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise SettingsError(f"{what} must be a finite number, got {value}")
        if kind is int:
            if float(value) != int(value):
                raise SettingsError(f"{what} must be a whole number, got {value}")
            value = int(value)
        else:
            value = float(value)
        s = fi.spec
        low_bad = s.minimum is not None and (value <= s.minimum if s.min_exclusive else value < s.minimum)
        high_bad = s.maximum is not None and (value >= s.maximum if s.max_exclusive else value > s.maximum)
        if low_bad or high_bad:
            unit = f" {s.unit}" if s.unit else ""
            raise SettingsError(f"{what} must be {s.range_text()}{unit}, got {value:g}")
        return value
    if fi.spec.multiple:
        items = tuple(v for v in (value.split(",") if isinstance(value, str) else value) if v != "")
        if fi.spec.choices is not None:
            bad = [v for v in items if v not in fi.spec.choices]
            if bad:
                raise SettingsError(f"{what}: unknown {bad[0]!r}; choose from {', '.join(fi.spec.choices)}")
        if not items:
            raise SettingsError(f"{what} needs at least one of {', '.join(fi.spec.choices or ())}")
        return items
    if kind is tuple:
        try:
            return tuple(value)
        except TypeError:
            raise SettingsError(f"{what} must be a list of values, got {value!r}") from None
    if kind is Path:
        return Path(value)
    if kind is str:
        value = str(value)
    if fi.spec.choices is not None and value not in fi.spec.choices:
        raise SettingsError(f"{what} must be one of {', '.join(map(str, fi.spec.choices))}, got {value!r}")
    return value


class Settings:
    """Base of every stage's settings dataclass: generic validation and (de)serialisation."""

    #: Name of the section in settings files (and of the GUI panel).
    section: ClassVar[str] = ""

    def validate(self: S) -> S:
        """Check (and coerce) every field; nested settings too. Returns self."""
        for fi in specs(type(self)):
            object.__setattr__(self, fi.name, check_value(fi, getattr(self, fi.name)))
        for name, _ in nested_fields(type(self)):
            value = getattr(self, name)
            if value is not None:
                value.validate()
        self.check()
        return self

    def check(self) -> None:
        """Checks that involve several fields (raise SettingsError); the default has none."""

    def replace(self: S, **changes: Any) -> S:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict:
        """Plain JSON values: tuples become lists, paths strings, nested settings dicts."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name.startswith("_"):
                continue
            out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls: type[S], data: dict | None) -> S:
        """The settings a :meth:`to_dict` wrote (missing keys keep their defaults), validated."""
        data = dict(data or {})
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SettingsError(f"unknown {cls.section or cls.__name__} setting {unknown[0]!r}")
        kwargs: dict[str, Any] = {}
        nested_types = dict(nested_fields(cls))
        by_name = {fi.name: fi for fi in specs(cls)}
        for name, value in data.items():
            if name in nested_types and isinstance(value, dict):
                kwargs[name] = nested_types[name].from_dict(value)
            elif name in by_name:
                kwargs[name] = _from_plain(by_name[name], value)
            else:
                kwargs[name] = value
        return cls(**kwargs).validate()


def _plain(value: Any) -> Any:
    if isinstance(value, Settings):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value.absolute())  # a settings file must reproduce the run from any folder
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return value


def _from_plain(fi: FieldInfo, value: Any) -> Any:
    if value is None:
        return None
    if fi.type is tuple or fi.spec.multiple:
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


# -- settings files -------------------------------------------------------------------------------
def settings_document(command: str, sections: dict[str, Settings], extra: dict | None = None) -> dict:
    """What ``<stem>.settings.json`` holds: the version, the command and every section."""
    doc: dict[str, Any] = {"depthstudio_settings": SETTINGS_VERSION, "command": command}
    doc["settings"] = {name: s.to_dict() for name, s in sections.items()}
    if extra:
        doc.update(_plain(extra))
    return doc


def write_settings_file(path: str | Path, command: str, sections: dict[str, Settings], extra: dict | None = None) -> Path:
    from depthstudio.io.atomic import write_text

    return write_text(path, json.dumps(settings_document(command, sections, extra), indent=2) + "\n")


def read_settings_file(path: str | Path) -> dict[str, dict]:
    """{section: dict} from a settings file (or a camera.json, which carries one), checked for version."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: settings file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read settings file: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a settings file (invalid JSON at line {exc.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("settings"), dict):
        raise InputError(f"{path}: not a DepthStudio settings file (no \"settings\" section)")
    version = doc.get("depthstudio_settings")
    if not isinstance(version, int) or version > SETTINGS_VERSION:
        raise InputError(f"{path}: settings file version {version!r} is newer than this DepthStudio reads "
                         f"({SETTINGS_VERSION}); update DepthStudio")
    return {str(k): v for k, v in doc["settings"].items() if isinstance(v, dict)}


def load_section(cls: type[S], sections: dict[str, dict] | None, name: str | None = None) -> S:
    """One section of a read settings file as ``cls`` (defaults where the file has none)."""
    data = (sections or {}).get(name or cls.section)
    if data is None:
        return cls().validate()
    try:
        return cls.from_dict(data)
    except TypeError as exc:
        raise SettingsError(f"settings file section {name or cls.section!r}: {exc}") from None


# -- command line ---------------------------------------------------------------------------------
def _cli_type(fi: FieldInfo) -> Callable[[str], Any]:
    # Shaped values (sizes, points) stay text here and are parsed by from_args, so that a bad one
    # is a SettingsError (exit 1, like every other out-of-range value), not an argparse usage error.
    if fi.spec.multiple:
        return lambda text: tuple(v.strip() for v in text.split(",") if v.strip())
    if fi.spec.parse is None and fi.type in (int, float, Path):
        return fi.type
    return str


def _help(fi: FieldInfo) -> str:
    text = fi.spec.help or fi.spec.label
    unit = f" {fi.spec.unit}" if fi.spec.unit and fi.type in (int, float) else ""
    if fi.type is bool:
        return text
    if fi.default is None:
        default = fi.spec.auto or "none"
    elif fi.spec.show is not None:
        default = fi.spec.show(fi.default)
    elif isinstance(fi.default, tuple):
        default = ",".join(map(str, fi.default))
    else:
        default = f"{fi.default:g}{unit}" if isinstance(fi.default, float) else f"{fi.default}{unit}"
    return f"{text} (default: {default})".replace("%", "%%")


def dest(cls: type, name: str) -> str:
    """Where argparse keeps a field's flag: unique per settings class, so two sections never clash."""
    return f"{getattr(cls, 'section', '') or cls.__name__}.{name}"


def add_flags(parser: Any, cls: type, exclude: tuple[str, ...] = (), title: str | None = None,
              rename: dict[str, str] | None = None, prefix: str = "") -> Any:
    """Add a flag for each field of ``cls`` (and of the settings nested in it) to ``parser``.

    ``exclude`` and ``rename`` take field names, dotted for nested ones ("lens.preview"). Flags
    default to "not given" (argparse.SUPPRESS), so :func:`from_args` knows what the user set and the
    dataclass stays the only place that holds defaults.
    """
    rename = rename or {}
    target = parser.add_argument_group(title) if title else parser
    for fi in specs(cls):
        key = prefix + fi.name
        if key in exclude or fi.spec.flag == "":
            continue
        flag = rename.get(key, fi.flag)
        kwargs: dict[str, Any] = {"dest": dest(cls, fi.name), "default": argparse.SUPPRESS, "help": _help(fi)}
        if fi.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if fi.default else "store_true"
        else:
            kwargs["type"] = _cli_type(fi)
            kwargs["metavar"] = fi.spec.metavar or fi.name.split("_")[-1].upper()
            if fi.spec.choices is not None and not fi.spec.multiple:
                kwargs["choices"] = fi.spec.choices
                kwargs.pop("metavar")
        target.add_argument(flag, **kwargs)
    for name, inner in nested_fields(cls):
        if prefix + name not in exclude:
            add_flags(parser, inner, exclude, f"{title}: {inner.section}" if title else None, rename,
                      prefix=f"{prefix}{name}.")
    return target


def given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """{field: value} of the flags of ``cls`` that the user gave; conflicting ones are an error."""
    values = {}
    for fi in specs(cls):
        if hasattr(args, dest(cls, fi.name)):
            value = getattr(args, dest(cls, fi.name))
            if fi.spec.parse is not None and isinstance(value, str):
                try:
                    value = fi.spec.parse(value)
                except SettingsError as exc:
                    raise SettingsError(f"{fi.flag}: {exc}") from None
            values[fi.name] = value
    groups: dict[str, list[FieldInfo]] = {}
    for fi in specs(cls):
        if fi.spec.exclusive and fi.name in values and values[fi.name] is not None:
            groups.setdefault(fi.spec.exclusive, []).append(fi)
    for members in groups.values():
        if len(members) > 1:
            raise SettingsError(f"{members[0].flag} and {members[1].flag} cannot be used together: choose one")
    return values


def _any_given(cls: type, args: argparse.Namespace) -> bool:
    return any(hasattr(args, dest(cls, fi.name)) for fi in specs(cls)) or any(
        _any_given(inner, args) for _, inner in nested_fields(cls))


def from_args(cls: type[S], args: argparse.Namespace, base: S | None = None) -> S:
    """``base`` (or the defaults) with the flags the user gave on top, validated.

    A flag of an exclusive group replaces the whole group of ``base`` (``--fov`` on the command line
    overrides a settings file's ``fx``).
    """
    values = given(cls, args)
    settings = base if base is not None else cls()
    changes = dict(values)
    for fi in specs(cls):
        if fi.name in values and fi.spec.exclusive:
            for other in specs(cls):
                if other.spec.exclusive == fi.spec.exclusive and other.name not in values:
                    changes[other.name] = None
    for name, inner in nested_fields(cls):
        current = getattr(settings, name)
        if current is None and not _any_given(inner, args):
            continue  # an optional stage left off stays off unless one of its flags is given
        changes[name] = from_args(inner, args, current)
    return dataclasses.replace(settings, **changes).validate()  # type: ignore[type-var]


def iter_settings(value: Any, prefix: str = "") -> Iterator[tuple[str, FieldInfo, Any]]:
    """(dotted name, field info, value) over a settings object and the settings nested in it."""
    for fi in specs(type(value)):
        yield prefix + fi.name, fi, getattr(value, fi.name)
    for name, _ in nested_fields(type(value)):
        inner = getattr(value, name)
        if inner is not None:
            yield from iter_settings(inner, f"{prefix}{name}.")


# -- value shapes shared by several settings ---------------------------------------------------------
#: Smallest output picture (an encoder needs 2x2 for 4:2:0 chroma); one rule for every command.
MIN_SIZE = 2
MAX_SIZE = 16384


def parse_size(text: str | tuple | list) -> tuple[int, int]:
    """'1920x1080' (or a [w, h] pair) -> (1920, 1080); at least 2x2, at most 16384 per side."""
    try:
        if isinstance(text, (tuple, list)):
            w, h = (int(v) for v in text)
        else:
            w, h = (int(v) for v in str(text).lower().replace("*", "x").split("x"))
    except (TypeError, ValueError):
        raise SettingsError(f"size must be WIDTHxHEIGHT, e.g. 1920x1080, got {text!r}") from None
    if min(w, h) < MIN_SIZE or max(w, h) > MAX_SIZE:
        raise SettingsError(f"size must be between {MIN_SIZE}x{MIN_SIZE} and {MAX_SIZE}x{MAX_SIZE} pixels, got {w}x{h}")
    return w, h


def show_size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def parse_point(text: str | tuple | list) -> tuple[float, float]:
    """'X,Y' -> (x, y): pixels, or 0..1 fractions of the picture when both lie in [0, 1]."""
    try:
        if isinstance(text, (tuple, list)):
            x, y = (float(v) for v in text)
        else:
            x, y = (float(v) for v in str(text).split(","))
    except (TypeError, ValueError):
        raise SettingsError(f"point must look like X,Y (pixels or 0..1 fractions), got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise SettingsError(f"point must be two finite numbers X,Y, got {text!r}")
    return x, y


def show_point(point: tuple[float, float]) -> str:
    return f"{point[0]:g},{point[1]:g}"
