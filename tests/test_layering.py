"""The engine must run headless: nothing under engine/ may import Qt."""

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
QT = ("PySide6", "PyQt5", "PyQt6", "qtpy", "shiboken6", "pyqtgraph")


def _qt_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
            names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in QT]
    return found


def test_no_engine_source_imports_qt():
    files = list(ENGINE.rglob("*.py"))
    assert len(files) > 5  # the scan really looked at the engine
    offenders = [hit for f in files for hit in _qt_imports(f)]
    assert offenders == []


def test_scan_catches_a_qt_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom PySide6.QtCore import QObject\n")
    assert _qt_imports(bad) == ["bad.py:2 PySide6.QtCore"]


def test_importing_every_engine_module_loads_no_qt():
    mods = sorted(
        "engine." + ".".join(p.relative_to(ENGINE).with_suffix("").parts)
        for p in ENGINE.rglob("*.py")
        if p.name != "__init__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent)
    assert r.returncode == 0, r.stdout + r.stderr


def _lint_imports(*args: str) -> subprocess.CompletedProcess:
    import shutil

    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=ENGINE.parent, timeout=300)


def test_import_contracts_hold():
    """pyproject.toml's import-linter contracts: gui -> engine only, no Qt in the engine,
    and the engine's own layers (no import circle between them)."""
    r = _lint_imports()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "6 kept, 0 broken" in r.stdout


def test_import_contracts_catch_a_violation(tmp_path):
    """The same checker, told that the engine sits above the window, finds the window's
    imports of the engine: the contracts above can fail."""
    cfg = tmp_path / "reversed.toml"
    cfg.write_text('[tool.importlinter]\nroot_packages = ["engine", "gui"]\n\n[[tool.importlinter.contracts]]\n'
                   'name = "reversed"\ntype = "layers"\nlayers = ["engine", "gui"]\n')
    r = _lint_imports("--config", str(cfg))
    assert r.returncode != 0 and "gui" in r.stdout and "BROKEN" in r.stdout
