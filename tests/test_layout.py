"""The package's shape: layers checked by import-linter, small modules, no private names
crossing module borders, every ``python -m`` entry point importable."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lpsc_lmp"
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -e .[test])")
    r = subprocess.run([exe], capture_output=True, text=True, cwd=SRC.parents[1])
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout


def test_modules_are_small() -> None:
    big = {str(p.relative_to(SRC)): n for p in modules()
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def _imported_private_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                "lpsc_lmp")):
            out += [f"{node.module}.{a.name}" for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")]
    return out


def test_no_private_name_is_imported_across_modules() -> None:
    found = {str(p.relative_to(SRC)): names for p in modules()
             if (names := _imported_private_names(p))}
    assert not found, found


def test_the_library_raises_no_click_errors() -> None:
    lib = [p for p in modules() if "cli" not in p.relative_to(SRC).parts]
    offenders = [str(p.relative_to(SRC)) for p in lib if "click" in p.read_text()]
    assert not offenders, offenders


@pytest.mark.parametrize("module", [
    "lpsc_lmp.md.worker", "lpsc_lmp.md.route_checks", "lpsc_lmp.models.export",
    "lpsc_lmp.training.predict", "lpsc_lmp.training.ema_fix", "lpsc_lmp.training.label",
    "lpsc_lmp.lammps_env", "lpsc_lmp.environments"])
def test_module_entry_points_have_main(module: str) -> None:
    """Every ``python -m`` helper that workers and scripts start defines ``main``."""
    path = SRC.parent / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "main" in names and "__main__" in path.read_text()
