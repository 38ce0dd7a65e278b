"""A real install: the wheel, installed (not editable) into a fresh virtual environment, works from an empty folder.

The new environment gets the wheel alone (``--no-deps``); its dependencies come from the test
environment's site-packages through a ``.pth`` line. Python does not process ``.pth`` files
inside a folder added that way, so the test environment's editable install of this checkout
stays invisible: everything ``synthscope`` imports comes from the wheel.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.conftest import BROWSER_ARGS, REPO, serve
from tests.conftest import chromium_executable

pytestmark = pytest.mark.browser


def _run(args: list[str], cwd: Path, timeout: float = 1200) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"{' '.join(args)} failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def readme_python_example() -> str:
    """The README's Python example: the code block after the marker ``<!-- python-example -->``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- python-example -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "README.md has no <!-- python-example --> code block"
    return match.group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtual environment holding only the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(REPO)], root)
    (wheel,) = (root / "dist").glob("synthscope-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"synthscope", wheel.name.split("-py3")[0] + ".dist-info"}, \
        "only synthscope (and its metadata) may go into site-packages"
    assert "synthscope/demo/inputs/rephrasings.jsonl" in names and "synthscope/dashboard/app.py" in names
    _run([sys.executable, "-m", "venv", str(root / "venv")], root)
    python = root / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)], root)
    venv_site = Path(_run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], root).strip())
    dependencies = [p for p in sys.path if p.endswith("site-packages")]  # this environment's, in its order
    (venv_site / "_test_dependencies.pth").write_text("\n".join(dependencies) + "\n", encoding="utf-8")
    return python


def test_the_wheel_is_what_imports(installed: Path, tmp_path: Path) -> None:
    out = _run([str(installed), "-c", "import synthscope, synthscope.dashboard; print(synthscope.__file__); "
                "print(synthscope.dashboard.__file__); print(sorted(synthscope.__all__))"], tmp_path)
    assert str(REPO) not in out and "site-packages/synthscope/" in out
    out = _run([str(installed), "-c", "import importlib.util as u; print(u.find_spec('analysis'), "
                "u.find_spec('dashboard'))"], tmp_path)
    assert out.strip() == "None None"  # no generic top-level names
    # every module of the checkout is in the wheel and imports from it (a package missing from pyproject fails here)
    modules = sorted(".".join(("synthscope", *p.relative_to(REPO / "analysis").with_suffix("").parts))
                     for p in (REPO / "analysis").rglob("*.py") if p.name not in {"__init__.py", "__main__.py"})
    out = _run([str(installed), "-c", "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
                "print('imported', len(sys.argv) - 1)", *modules], tmp_path)
    assert out.strip() == f"imported {len(modules)}"


@pytest.mark.timeout(2400)  # builds the whole demo (tiny models included) from the wheel
def test_demo_serve_and_the_readme_example_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    synthscope = str(installed.parent / "synthscope")
    _run([synthscope, "demo", "ws"], folder, timeout=1800)
    assert (folder / "ws" / "synthscope.toml").is_file()

    with serve(folder / "ws", tmp_path / "serve.log", python=str(installed), cwd=folder) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=BROWSER_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url, timeout=120_000)
        page.get_by_role("heading", name="Overview").first.wait_for(timeout=120_000)
        # the dataset table is a canvas grid: its cells are in the DOM for screen readers, not visible
        page.get_by_text("humaneval@v1", exact=False).first.wait_for(state="attached", timeout=60_000)
        assert not page.locator('[data-testid="stException"]').count()
        browser.close()
    assert not errors

    (folder / "example.py").write_text(readme_python_example(), encoding="utf-8")
    out = _run([str(installed), "example.py"], folder)
    assert "contaminated" in out and "support-synth@v3" in out
