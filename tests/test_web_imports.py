"""The web process answers its first request without importing torch (14 s a cold process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Loads the WSGI application and every URL pattern, as a web worker's first request does, then
# prints the heavy numeric packages it imported.
PROBE = """
import sys
from config.wsgi import application
from django.urls import get_resolver
resolver = get_resolver()
resolver.url_patterns
resolver.reverse_dict
heavy = ("torch", "torchvision", "efficientnet_lite_pytorch", "sklearn", "skimage")
print(sorted({name.split(".")[0] for name in sys.modules} & set(heavy)))
"""


def test_resolving_every_url_imports_no_torch():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}

    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
