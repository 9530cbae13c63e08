"""The engine never imports Qt: all computation stays usable headless (CLI, batch, tests). In forensics_app,
only the GUI, the figures and the PDF writer import Qt, and the report, the figures and the CLI never import
the GUI (pyproject.toml's import-linter contracts)."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "forensics_app")


def test_no_engine_module_imports_qt_or_the_gui():
    offenders = []
    for path in (REPO / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in QT]
    assert offenders == []


def test_importing_the_whole_engine_loads_no_qt():
    modules = sorted(p.stem for p in (REPO / "engine").glob("*.py") if p.stem != "__init__")
    code = ("import sys\n" + "".join(f"import engine.{m}\n" for m in modules) +
            "bad = [m for m in sys.modules if m.split('.')[0] in %r]\nprint(bad)\nsys.exit(1 if bad else 0)" % (QT,))
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_import_linter_contract_holds():
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


QT_SIDE = ("forensics_app.gui", "forensics_app.figures", "forensics_app.report.pdf")


def test_every_module_outside_the_qt_side_is_under_the_qt_contract():
    """The Qt contract lists its modules one by one; a new module must join the list (or the Qt side)."""
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    listed = next(c for c in contracts if c["name"].startswith("only the GUI"))["source_modules"]
    modules = []
    for path in (REPO / "forensics_app").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == q or name.startswith(q + ".") for q in QT_SIDE):
            modules.append(name)
    assert sorted(set(modules) - set(listed)) == []


def test_headless_scan_loads_no_qt(tiny_ddim_dir, tmp_path):
    """`scan --json` (no --report) runs without Qt, and the report's Qt-free parts import without it."""
    import numpy as np
    from PIL import Image

    from engine.treering import new_random_keys

    new_random_keys(2, latent_shape=(4, 16, 16), radius=3, seed=0).save(tmp_path / "keys.json")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    argv = ["scan", str(tmp_path / "a.png"), "--model", str(tiny_ddim_dir), "--keys", str(tmp_path / "keys.json"),
            "--device", "cpu", "--method", "encoder", "--steps", "3", "--quiet", "--json", str(tmp_path / "out.json")]
    code = ("import sys\nfrom forensics_app.cli import main\n"
            f"rc = main({argv!r})\n"
            "import forensics_app.report, forensics_app.report.sections, forensics_app.report.twin\n"
            "import forensics_app.figure_arrays\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6')))\n"
            "sys.exit(rc)")
    env = {k: v for k, v in __import__("os").environ.items() if k != "QT_QPA_PLATFORM"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "out.json").is_file()


def test_engine_sets_a_passive_openmp_wait_policy_before_torch_loads():
    code = "import os; os.environ.pop('OMP_WAIT_POLICY', None); import engine.analysis, torch; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "PASSIVE", out.stderr


def test_the_window_comes_up_without_torch(tmp_path):
    """The GUI's import chain and the window's construction load neither torch nor diffusers (seconds of
    start-up): the engine is imported on the worker thread once the window is shown."""
    code = (
        "import sys\n"
        "heavy = ('torch', 'diffusers', 'scipy', 'transformers')\n"
        "import forensics_app.gui.app, forensics_app.gui.main_window\n"
        "print('import:', sorted(m for m in heavy if m in sys.modules))\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from forensics_app.gui.main_window import MainWindow\n"
        "w = MainWindow()\n"
        "print('construct:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "TREERING_FORENSICS_CONFIG": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "import: []" in out.stdout and "construct: []" in out.stdout, out.stdout
