"""The layering rules of DESIGN.md, checked: the core never imports Qt; the GUI starts without torch."""

import pkgutil
import subprocess
import sys

import medview

CORE = ("medview.io", "medview.inference", "medview.annotation", "medview.training")


def _core_modules():
    names = []
    for pkg in CORE:
        try:
            module = __import__(pkg, fromlist=["_"])
        except ModuleNotFoundError:
            continue
        names.append(pkg)
        names += [f"{pkg}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
    return names


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_core_never_imports_qt():
    modules = _core_modules()
    assert "medview.io.scan" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "    bad = [k for k in sys.modules if k.startswith(('PySide6', 'pyqtgraph', 'PyQt'))]\n"
        "    assert not bad, (m, bad[:3])\n"
        "print('ok')\n"
    )
    assert _run(code).strip() == "ok"


def test_gui_start_up_imports_do_not_pull_torch():
    code = (
        "import sys\n"
        "import medview.cli, medview.ui.app, medview.ui.main_window\n"
        "print('torch' in sys.modules, 'monai' in sys.modules)\n"
    )
    assert _run(code).split() == ["False", "False"]


def test_version_flag():
    out = _run("import sys; sys.argv=['medview','--version']\nfrom medview.cli import main\ntry:\n main()\n"
               "except SystemExit as e:\n print('exit', e.code)")
    assert f"MedView {medview.__version__}" in out
