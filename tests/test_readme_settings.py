"""README's configuration table names every environment variable settings.py reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# env_int("NAME", ...), env_str(\n    "NAME", ...), os.environ.get("NAME", ...)
READ = re.compile(r'(?:env_[a-z]+|os\.environ\.get)\(\s*"([A-Z][A-Z0-9_]+)"')
NAME = re.compile(r"`([A-Z_][A-Z0-9_]*\*?)`")


def settings_read() -> set[str]:
    return set(READ.findall((ROOT / "config" / "settings.py").read_text()))


def readme_documented() -> set[str]:
    """Names in the README's table rows. A row may shorten names after its first one to their
    last words (`CROWDNET_FETCH_TIMEOUT_S`, `_MAX_BYTES`): those stand for the first name's
    prefix plus the ending; `CROWDNET_GATE_*` stands for every name that starts so."""
    names: set[str] = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        row = NAME.findall(first_cell)
        full = [name for name in row if not name.startswith("_")]
        for name in row:
            if name.startswith("_") and full:
                words = full[0].split("_")
                names |= {"_".join(words[:cut]) + name for cut in range(1, len(words))}
            else:
                names.add(name)
    return names


def test_every_setting_is_in_the_readme():
    documented = readme_documented()
    wildcards = [name[:-1] for name in documented if name.endswith("*")]

    missing = {
        name
        for name in settings_read()
        if name not in documented and not name.startswith(tuple(wildcards))
    }

    assert missing == set()


def test_the_readme_names_no_setting_that_does_not_exist():
    read = settings_read()
    # Shortened names expand to several guesses; a full name must be one settings.py reads.
    full = {
        name
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `")
        for name in NAME.findall(line.split("|")[1])
        if not name.startswith("_") and not name.endswith("*")
    }

    assert full - read - {"TORCH_HOME"} == set()
