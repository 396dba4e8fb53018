"""The apps' seams: moved models keep their tables, and the crowd side (labeling) imports none
of the apps built on it (datasets, training, campaigns, demo)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[1]
ABOVE_LABELING = ("datasets", "training", "campaigns", "demo")


@pytest.mark.parametrize(
    ("label", "table"),
    [
        ("datasets.DatasetVersion", "training_datasetversion"),
        ("datasets.DatasetItem", "training_datasetitem"),
        ("datasets.DatasetExport", "labeling_datasetexport"),
        ("demo.DemoTruth", "labeling_demotruth"),
    ],
)
def test_moved_models_keep_their_tables(label, table):
    assert apps.get_model(label)._meta.db_table == table


def test_state_choices_match_the_pure_training_code():
    from training.ml.catalog import MODES
    from training.models import TrainingRun

    assert tuple(TrainingRun.Mode.values) == MODES


def _imported_apps(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of ``package`` imports anywhere (module level or inside
    a function), by module path; relative imports stay inside the package and are skipped."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_labeling_source_imports_no_app_built_on_it():
    offending = {
        module: sorted(names & set(ABOVE_LABELING))
        for module, names in _imported_apps("labeling").items()
        if names & set(ABOVE_LABELING)
    }

    assert offending == {}


def test_datasets_source_imports_neither_training_nor_demo():
    offending = {
        module: sorted(names & {"training", "campaigns", "demo"})
        for module, names in _imported_apps("datasets").items()
        if names & {"training", "campaigns", "demo"}
    }

    assert offending == {}


# Sets Django up with only the apps labeling stands on, imports every labeling module, and
# prints which apps built on labeling got imported: none may be, or labeling needs them.
PROBE = """
import importlib, pkgutil, sys
import django
from django.conf import settings
from config import settings as project

values = {{name: getattr(project, name) for name in dir(project) if name.isupper()}}
values["INSTALLED_APPS"] = [
    app for app in project.INSTALLED_APPS if app.split(".")[0] not in {above!r}
]
settings.configure(**values)
django.setup()
import labeling
for module in pkgutil.walk_packages(labeling.__path__, "labeling."):
    importlib.import_module(module.name)
print(sorted({{name.split(".")[0] for name in sys.modules}} & set({above!r})))
"""


def test_every_labeling_module_imports_without_the_apps_built_on_it():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(above=ABOVE_LABELING)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
