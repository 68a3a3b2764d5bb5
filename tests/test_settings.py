"""One definition of every setting: metadata, validation, settings files, generated flags."""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from depthstudio.cli import build_parser, main
from depthstudio.errors import SettingsError
from depthstudio.settings import (
    Settings,
    add_flags,
    dest,
    from_args,
    iter_settings,
    read_settings_file,
    setting,
    specs,
    write_settings_file,
)

REPO = Path(__file__).resolve().parents[1]


def all_settings_classes() -> list[type[Settings]]:
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.depth import DepthMapping
    from depthstudio.geometry.export import ExportSettings
    from depthstudio.geometry.mesh import MeshSettings
    from depthstudio.geometry.points import PointCleanup
    from depthstudio.io.depthfiles import DepthOutputSettings
    from depthstudio.render.camera_path import PathSettings
    from depthstudio.render.dof import DofSettings, FocusPullSettings
    from depthstudio.render.fill import FillSettings
    from depthstudio.render.parallax import ParallaxSettings
    from depthstudio.render.stereo import StereoSettings
    from depthstudio.source import DepthFileSettings, ModelSettings
    from depthstudio.video.effects import VideoDofSettings, VideoParallaxSettings
    from depthstudio.video.pipeline import VideoSettings
    from depthstudio.video.stabilize import StabilizeSettings

    return [CameraSettings, DepthMapping, ExportSettings, MeshSettings, PointCleanup, DepthOutputSettings,
            PathSettings, DofSettings, FocusPullSettings, FillSettings, ParallaxSettings, DepthFileSettings,
            ModelSettings, VideoDofSettings, VideoParallaxSettings, VideoSettings, StabilizeSettings, StereoSettings]


@pytest.mark.parametrize("cls", all_settings_classes(), ids=lambda c: c.__name__)
def test_defaults_validate_and_round_trip_through_json(cls):
    settings = cls().validate()
    assert settings.validate() is settings  # validate() returns self everywhere
    text = json.dumps(settings.to_dict())  # real JSON, no default=str
    again = cls.from_dict(json.loads(text))
    assert again == settings
    assert cls.section, f"{cls.__name__} needs a section name"
    for name, fi, _ in iter_settings(settings):
        assert fi.spec.label, f"{cls.__name__}.{name} has no label"
        assert fi.spec.help or fi.spec.flag == "", f"{cls.__name__}.{name} has a flag but no help"


@pytest.mark.parametrize("cls", all_settings_classes(), ids=lambda c: c.__name__)
def test_every_range_is_enforced_with_field_value_and_range_in_the_message(cls):
    for fi in specs(cls):
        if fi.type not in (int, float):
            continue
        for bound, outside in ((fi.spec.minimum, -1), (fi.spec.maximum, +1)):
            if bound is None:
                continue
            value = bound + outside * (1 if fi.type is int else 1e-3 * max(1.0, abs(bound)))
            with pytest.raises(SettingsError) as err:
                cls(**{fi.name: fi.type(value)}).validate()
            message = str(err.value)
            assert fi.spec.label.lower() in message and f"{bound:g}" in message, message


def test_unknown_keys_and_bad_types_in_a_settings_file_are_named():
    from depthstudio.geometry.mesh import MeshSettings

    with pytest.raises(SettingsError, match="'edge_kut'"):
        MeshSettings.from_dict({"edge_kut": 0.1})
    with pytest.raises(SettingsError, match="stride"):
        MeshSettings.from_dict({"stride": "many"})
    with pytest.raises(SettingsError, match="whole number"):
        MeshSettings.from_dict({"stride": 1.5})


def test_generated_flags_have_no_defaults_of_their_own():
    """Every flag made from a settings field leaves its value to the dataclass (argparse.SUPPRESS)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen = 0
    for name, command in sub.choices.items():
        for action in command._actions:
            if "." in (action.dest or ""):
                assert action.default is argparse.SUPPRESS, f"{name} {action.option_strings} has a default"
                seen += 1
    assert seen > 60


def test_one_definition_of_the_input_size_and_the_edge_cut():
    """The numbers that the first version wrote in many places now live in one dataclass each."""
    sources = [p for p in (REPO / "depthstudio").rglob("*.py")] + list((REPO / "plugins").rglob("*.py"))
    hits_518 = [p for p in sources if re.search(r"\b518\b", p.read_text()) and "random_init" not in p.name]
    assert [p.relative_to(REPO).as_posix() for p in hits_518] == ["depthstudio/models/catalogue.py"], hits_518
    edge_cut = [p for p in sources if re.search(r"DEFAULT_EDGE_CUT\s*=", p.read_text())]
    assert len(edge_cut) == 1


def test_exclusive_flags_name_both(tmp_path, capsys):
    code = main(["mesh", str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--fov", "50", "--fx", "600"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "--fov" in err and "--fx" in err
    code = main(["dof", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"), "--fx", "355", "--focal-mm", "85"])
    err = capsys.readouterr().err
    assert code == 1 and "--focal-mm" in err and "--fx" in err


def test_usage_errors_are_one_line_with_a_help_hint(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["mesh", "--no-such-flag", "x.png", "-o", "out"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "--help" in err


@pytest.mark.parametrize("command", ["dof", "video"])
def test_size_zero_is_one_line_and_one_rule(command, tmp_path, capsys):
    out = tmp_path / ("x.png" if command == "dof" else "x")
    extra = ["--focus-pull", "1:2"] if command == "dof" else []
    code = main([command, str(tmp_path / "in.png"), "-o", str(out), "--size", "0x0", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "between 2x2" in err


def test_flags_override_a_settings_file_and_an_exclusive_flag_replaces_its_group(tmp_path):
    from depthstudio.geometry.camera import CameraSettings
    from depthstudio.geometry.mesh import MeshSettings

    saved = tmp_path / "a.settings.json"
    write_settings_file(saved, "mesh", {"camera": CameraSettings(fx=600.0, cx=10.0), "mesh": MeshSettings(stride=3)})
    sections = read_settings_file(saved)
    parser = argparse.ArgumentParser()
    add_flags(parser, CameraSettings)
    add_flags(parser, MeshSettings)
    args = parser.parse_args(["--fov", "50", "--stride", "2"])
    camera = from_args(CameraSettings, args, CameraSettings.from_dict(sections["camera"]))
    mesh = from_args(MeshSettings, args, MeshSettings.from_dict(sections["mesh"]))
    assert camera.fov_deg == 50 and camera.fx is None and camera.cx == 10.0
    assert mesh.stride == 2
    assert getattr(args, dest(CameraSettings, "fov_deg")) == 50


def test_settings_files_are_versioned(tmp_path):
    path = tmp_path / "x.settings.json"
    path.write_text(json.dumps({"depthstudio_settings": 99, "settings": {}}))
    with pytest.raises(Exception, match="newer"):
        read_settings_file(path)
    path.write_text("{not json")
    with pytest.raises(Exception, match="invalid JSON"):
        read_settings_file(path)


def test_a_new_settings_class_gets_flags_checks_and_json_for_free():
    @dataclass
    class Knob(Settings):
        section = "knob"
        level: float = setting(0.5, label="Level", minimum=0.0, maximum=1.0, help="how much")
        mode: str = setting("a", label="Mode", choices=("a", "b"), help="which")
        size: int | None = setting(None, label="Size", minimum=1, help="how big", exclusive="g")
        scale: float | None = setting(None, label="Scale", minimum=0.0, min_exclusive=True, help="or", exclusive="g")

    parser = argparse.ArgumentParser()
    add_flags(parser, Knob)
    assert from_args(Knob, parser.parse_args(["--level", "0.25", "--mode", "b"])) == Knob(0.25, "b")
    with pytest.raises(SettingsError, match=r"level \(--level\) must be >= 0 and <= 1, got 2"):
        from_args(Knob, parser.parse_args(["--level", "2"]))
    with pytest.raises(SettingsError, match="--size and --scale"):
        from_args(Knob, parser.parse_args(["--size", "3", "--scale", "2"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "c"])


# -- the settings file beside every output reproduces it ------------------------------------------
@pytest.fixture
def scene(tmp_path, rng):
    from PIL import Image

    h, w = 48, 64
    rgb = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    depth = np.full((h, w), 3.0, np.float32)
    depth[12:36, 16:40] = 1.5
    Image.fromarray(rgb).save(tmp_path / "shot.png")
    np.save(tmp_path / "shot.npy", depth)
    return tmp_path / "shot.png", tmp_path / "shot.npy"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.endswith(".json")}


def test_mesh_settings_file_reproduces_the_export(scene, tmp_path):
    photo, depth = scene
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["mesh", str(photo), "-o", str(first), "--depth", str(depth), "--depth-kind", "metric",
                 "--fx", "70", "--cx", "30", "--edge-cut", "0.1", "--format", "ply,obj"]) == 0
    saved = json.loads((first / "shot.settings.json").read_text())
    assert saved["command"] == "mesh" and saved["settings"]["camera"]["fx"] == 70
    assert main(["mesh", str(photo), "-o", str(second), "--settings", str(first / "shot.settings.json")]) == 0
    assert _files(first) == _files(second) and (second / "shot.ply").exists()
    cam1 = json.loads((first / "shot.camera.json").read_text())
    cam2 = json.loads((second / "shot.camera.json").read_text())
    assert cam1["intrinsics"] == cam2["intrinsics"]


def test_depth_settings_file_reproduces_the_depth(tmp_path, scene, tiny_onnx):
    photo, _ = scene
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["depth", str(photo), "-o", str(first), "--model", str(tiny_onnx), "--input-size", "70"]) == 0
    assert main(["depth", str(photo), "-o", str(second), "--settings", str(first / "shot.settings.json")]) == 0
    a, b = np.load(first / "shot_depth.npy"), np.load(second / "shot_depth.npy")
    assert np.array_equal(a, b)
    assert json.loads((first / "shot.settings.json").read_text())["settings"]["model"]["input_size"] == 70


def test_dof_settings_file_reproduces_the_still(scene, tmp_path):
    pytest.importorskip("cv2", reason="the lens blur needs OpenCV")
    photo, depth = scene
    out1, out2 = tmp_path / "one" / "a.png", tmp_path / "two" / "a.png"
    assert main(["dof", str(photo), "-o", str(out1), "--depth", str(depth), "--depth-kind", "metric",
                 "--f-number", "1.4", "--focus-point", "20,20", "--preview"]) == 0
    assert main(["dof", str(photo), "-o", str(out2), "--settings", str(out1.with_name("a.settings.json"))]) == 0
    assert out1.read_bytes() == out2.read_bytes()


@pytest.mark.gl
def test_parallax_settings_file_reproduces_the_video(scene, tmp_path):
    pytest.importorskip("moderngl")
    pytest.importorskip("av")
    photo, depth = scene
    out1, out2 = tmp_path / "one" / "a.gif", tmp_path / "two" / "a.gif"
    assert main(["parallax", str(photo), "-o", str(out1), "--depth", str(depth), "--depth-kind", "metric",
                 "--preset", "swing", "--duration", "0.3", "--fps", "10", "--size", "32x24", "--no-fill"]) == 0
    saved = json.loads(out1.with_name("a.settings.json").read_text())["settings"]
    assert saved["parallax"]["path"]["preset"] == "swing" and saved["parallax"]["fill"]["enabled"] is False
    assert main(["parallax", str(photo), "-o", str(out2), "--settings", str(out1.with_name("a.settings.json"))]) == 0
    from PIL import Image, ImageSequence

    frames = [[np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(p))] for p in (out1, out2)]
    assert len(frames[0]) == len(frames[1]) == 3
    assert all(np.array_equal(a, b) for a, b in zip(*frames))


def test_camera_json_is_a_settings_file_too(scene, tmp_path):
    photo, depth = scene
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["mesh", str(photo), "-o", str(first), "--depth", str(depth), "--depth-kind", "metric",
                 "--fx", "80", "--cy", "20", "--format", "ply"]) == 0
    assert main(["mesh", str(photo), "-o", str(second), "--depth", str(depth), "--depth-kind", "metric",
                 "--format", "ply", "--settings", str(first / "shot.camera.json")]) == 0
    a = json.loads((first / "shot.camera.json").read_text())["intrinsics"]
    b = json.loads((second / "shot.camera.json").read_text())["intrinsics"]
    assert a == b and b["fx"] == 80 and b["cy"] == 20
