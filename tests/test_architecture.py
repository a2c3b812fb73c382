"""The layering rules of DESIGN.md, checked: the core never imports Qt; no import cycles; the GUI starts
without torch."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import medview

CORE = ("medview.io", "medview.inference", "medview.annotation", "medview.training", "medview.pacs",
        "medview.reporting", "medview.viewing", "medview.campaign")


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


def _import_graph() -> dict[str, set[str]]:
    """Module -> the medview modules it imports, at module level or inside functions (a lazy import
    is still a dependency; it only hides a cycle until the function runs)."""
    root = Path(medview.__file__).parent
    files = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for mod, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                    pkg = pkg[:len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            # a submodule importing its own package (for a sibling) is not a cycle between modules
            deps.update(n for n in names if n in files and n != mod and not mod.startswith(n + "."))
        graph[mod] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = _import_graph()
    assert "medview.io.scan" in graph and graph["medview.io.scan"], "the import graph came out empty"
    assert _cycles(graph) == []
