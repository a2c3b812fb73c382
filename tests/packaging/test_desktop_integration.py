"""Desktop entry, icons and the packaging files (static checks; the build is packaging/check.sh)."""

from __future__ import annotations

import configparser
import shutil
import subprocess

import pytest
from PIL import Image

from medview.config import PROJECT_ROOT, resources_dir

PACKAGING = PROJECT_ROOT / "packaging"
ICONS = resources_dir() / "icons"


def _desktop() -> configparser.SectionProxy:
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # keys are case-sensitive
    cp.read(PACKAGING / "medview.desktop", encoding="utf-8")
    return cp["Desktop Entry"]


def test_desktop_entry_has_the_required_keys():
    d = _desktop()
    assert d["Type"] == "Application"
    assert d["Name"] == "MedView"
    assert d["Exec"].split()[0] == "medview" and d["Exec"].split()[1] in ("%F", "%f", "%U", "%u")
    assert d["Terminal"] == "false"
    assert d["Icon"] == "medview"
    cats = d["Categories"]
    assert cats.endswith(";") and "MedicalSoftware" in cats.split(";")
    assert {"Graphics", "Science", "Education", "Office", "Utility"} & set(cats.split(";"))  # a main category
    assert "application/dicom" in d["MimeType"].split(";")
    assert "research use only" in d["Comment"]


def test_desktop_entry_passes_desktop_file_validate():
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate is not installed")
    res = subprocess.run([tool, str(PACKAGING / "medview.desktop")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_icon_files_exist_in_every_size():
    assert (ICONS / "medview.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    for s in (16, 24, 32, 48, 64, 128, 256, 512):
        with Image.open(ICONS / f"medview-{s}.png") as im:
            assert im.size == (s, s) and im.mode == "RGBA"
            assert im.getpixel((0, 0))[3] == 0 and im.getpixel((s // 2, s // 2))[3] == 255  # rounded tile
    with Image.open(ICONS / "medview.ico") as ico:
        assert (256, 256) in ico.info["sizes"] and (16, 16) in ico.info["sizes"]
    with Image.open(ICONS / "medview.icns") as icns:
        assert icns.size[0] >= 256


@pytest.mark.gui
def test_svg_icon_renders_with_qt(qapp):
    from PySide6.QtGui import QIcon

    icon = QIcon(str(ICONS / "medview.svg"))
    assert not icon.isNull()
    img = icon.pixmap(48, 48).toImage()
    assert img.width() == 48 and img.pixelColor(24, 24).alpha() == 255


def test_spec_bundles_models_resources_and_excludes_unused_modules():
    text = (PACKAGING / "medview.spec").read_text(encoding="utf-8")
    compile(text, "medview.spec", "exec")
    for needle in ('"resources"', '"models"', "collect_submodules(\"medview\")", '"tkinter"', '"matplotlib"',
                   '"IPython"', '"pytest"', '"tensorboard"', '"caffe2"', '"triton"', "torch/test/", "COLLECT("):
        assert needle in text, needle
    assert "onefile" not in text.lower().replace("one-folder", "")


@pytest.mark.parametrize("script", ["build.sh", "check.sh", "install-linux.sh"])
def test_shell_scripts_parse_and_are_executable(script):
    path = PACKAGING / script
    assert path.stat().st_mode & 0o111
    res = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
