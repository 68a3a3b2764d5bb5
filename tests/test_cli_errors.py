"""Usage errors: one line with a pointer to --help (never the usage text), exit 2; bad values of a
setting (sizes, points, ranges): one line naming the flag, exit 1; one WxH rule."""
from __future__ import annotations

import pytest

from depthstudio.cli import main
from depthstudio.errors import SettingsError
from depthstudio.settings import MAX_SIZE, MIN_SIZE, parse_point, parse_size


def run(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ("dof", "a.png", "-o", "b.png", "--size", "0x0", "--focus-pull", "1:2"),
    ("video", "a.mp4", "-o", "out", "--size", "0x0"),
    ("dof", "a.png", "-o", "b.png", "--size", "1x1", "--focus-pull", "1:2"),
    ("video", "a.mp4", "-o", "out", "--size", "1x1"),
    ("video", "a.mp4", "-o", "out", "--size", "abc"),
    ("dof", "a.png", "-o", "b.png", "--focus-point", "1,2,3"),
])
def test_bad_values_are_one_line_naming_the_flag(capsys, argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "usage:" not in err and ("--size" in err or "--focus-point" in err), err


@pytest.mark.parametrize("argv", [
    ("mesh", "a.png", "-o", "out", "--no-such-flag"),
    ("mesh", "a.png"),  # -o missing
    ("frobnicate",),
])
def test_usage_errors_are_one_line_with_a_help_hint(capsys, argv):
    code, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "usage:" not in err and lines[0].endswith("--help)"), err


def test_dof_and_video_share_one_size_rule(capsys):
    assert main(["dof", "a.png", "-o", "b.png", "--size", "1x1"]) == 1
    dof = capsys.readouterr().err
    assert main(["video", "a.mp4", "-o", "out", "--size", "1x1"]) == 1
    video = capsys.readouterr().err
    assert dof == video and "between 2x2" in dof


@pytest.mark.parametrize("text, size", [("1920x1080", (1920, 1080)), ("2X2", (2, 2)), ("640*480", (640, 480)),
                                        ([320, 240], (320, 240)), (f"{MAX_SIZE}x{MIN_SIZE}", (MAX_SIZE, MIN_SIZE))])
def test_parse_size_accepts(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0x0", f"{MIN_SIZE - 1}x{MIN_SIZE}", f"{MAX_SIZE + 1}x10", "10", "axb", "10x10x10",
                                  "", "-4x4"])
def test_parse_size_rejects_with_one_line(text):
    with pytest.raises(SettingsError) as info:
        parse_size(text)
    assert "\n" not in str(info.value) and "size" in str(info.value)


def test_parse_point():
    assert parse_point("0.5,0.25") == (0.5, 0.25)
    assert parse_point("12,34") == (12.0, 34.0)
    with pytest.raises(SettingsError):
        parse_point("1,2,3")
