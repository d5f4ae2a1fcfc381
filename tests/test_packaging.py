"""What the installed package carries: the review app and the schemas ship inside it (issue 11)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
import setuptools

from labelfix.cli.review_commands import APP_ENV_VAR, app_script
from labelfix.errors import LabelfixError

ROOT = Path(__file__).resolve().parents[1]
APP_FILES = ("labelfix/review/app/__init__.py", "labelfix/review/app/review_app.py",
             "labelfix/review/app/components.py")


def test_the_review_app_is_a_package_setuptools_finds() -> None:
    # The same discovery rule as pyproject's [tool.setuptools.packages.find] include = ["labelfix*"].
    packages = setuptools.find_packages(where=str(ROOT), include=["labelfix*"])
    assert "labelfix.review.app" in packages
    app = resources.files("labelfix.review.app")
    assert (app / "review_app.py").is_file() and (app / "components.py").is_file()


def test_app_script_is_the_packaged_one_unless_overridden(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(APP_ENV_VAR, raising=False)
    assert app_script() == Path(str(resources.files("labelfix.review.app") / "review_app.py"))
    custom = tmp_path / "my_app.py"
    custom.write_text("")
    monkeypatch.setenv(APP_ENV_VAR, str(custom))
    assert app_script() == custom
    monkeypatch.setenv(APP_ENV_VAR, str(tmp_path / "missing.py"))
    with pytest.raises(LabelfixError, match="missing.py is missing") as raised:
        app_script()
    assert APP_ENV_VAR in raised.value.fix


@pytest.mark.slow
def test_the_wheel_contains_the_review_app_and_the_schemas(tmp_path) -> None:
    """Build a wheel from a copy of the sources (an in-tree build would write build/ into the checkout)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("labelfix", "schemas"):  # labelfix/schemas links to ../schemas: copy the link and its target
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
    completed = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                                "--no-cache-dir", "-q", "-w", str(tmp_path / "dist"), str(source)],
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("labelfix-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(APP_FILES) <= names
    assert "labelfix/schemas/migrations/0001_initial.sql" in names
    assert "labelfix/schemas/bench_results.schema.json" in names
