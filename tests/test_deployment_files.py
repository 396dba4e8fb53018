"""The files that ship CrowdNet to other hosts: the package list, the Docker build context and the
compose files. No Docker daemon runs in the tests, so they read the files as Docker would: every
app reaches the image, and every CrowdNet container of every compose variant shares the same
media, checkpoints and exports."""

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from django.apps import apps
from django.conf import settings
from setuptools import find_packages

ROOT = Path(settings.BASE_DIR)
DOCKER = ROOT / "docker"
APP_IMAGE = "crowdnet:latest"
SHARED_MOUNTS = {
    "media": ("/data/media", "CROWDNET_MEDIA_ROOT"),
    "checkpoints": ("/data/checkpoints", "CROWDNET_CHECKPOINT_DIR"),
    "exports": ("/data/exports", "CROWDNET_EXPORT_DIR"),
}


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's `!reset` tag (an override that empties a base value)."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: {"reset": True})


def _compose(name: str) -> dict:
    # A SafeLoader subclass: no Python objects, only the one extra tag.
    return yaml.load((DOCKER / name).read_text(), Loader=_ComposeLoader)  # noqa: S506


def _first_party_apps() -> list[str]:
    names = []
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(ROOT.resolve()) and "site-packages" not in path.parts:
            names.append(config.name)
    return sorted(names)


def _settings_env_names() -> set[str]:
    text = (ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', text)) | set(
        re.findall(r'environ(?:\.get\(|\[)\s*"([A-Z0-9_]+)"', text)
    )


def test_every_app_is_a_package_of_the_distribution():
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"
    ]
    packages = set(find_packages(str(ROOT), exclude=find.get("exclude", ())))
    first_party = _first_party_apps()
    assert {"labeling", "training", "jobs", "campaigns"} <= set(first_party)
    assert [app for app in first_party if app not in packages] == []
    assert "config" in packages
    assert not {package for package in packages if package.split(".")[0] in {"tests", "bench"}}


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        anywhere = pattern.startswith("**/")
        bare = pattern.removeprefix("**/").rstrip("/")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, bare) or (
                anywhere and fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], bare)
            ):
                return True
    return False


def test_the_image_gets_every_app_templates_and_static_files():
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    dockerfile = (DOCKER / "Dockerfile").read_text()
    # Both stages copy the whole (ignore-filtered) context, not a list of apps that goes stale.
    assert dockerfile.count("COPY . ./") == 2
    needed = ["manage.py", "pyproject.toml", "templates/base.html", "static"] + [
        f"{app.replace('.', '/')}/apps.py" for app in _first_party_apps()
    ]
    assert [path for path in needed if _ignored(path, patterns)] == []
    assert all((ROOT / path).exists() for path in needed)
    assert _ignored("tests/conftest.py", patterns)
    assert _ignored("labeling/__pycache__/models.cpython-311.pyc", patterns)
    assert _ignored(".venv/bin/python", patterns)
    # The shared mount points exist in the image, owned by its user (volumes copy that).
    for _volume, (mount, variable) in SHARED_MOUNTS.items():
        assert re.search(rf"install -d [^\n]*(\\\n[^\n]*)*{re.escape(mount)}\b", dockerfile)
        assert f"{variable}={mount}" in dockerfile


def _app_services(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == APP_IMAGE
    }


def test_every_crowdnet_container_mounts_the_three_shared_stores():
    base = _compose("docker-compose.yml")
    services = _app_services(base)
    assert set(services) == {
        "migrate",
        "web",
        "worker",
        "training-worker",
        "training-worker-gpu",
        "beat",
    }
    for name, service in services.items():
        mounts = dict(volume.split(":", 1) for volume in service["volumes"])
        for volume, (mount, variable) in SHARED_MOUNTS.items():
            assert mounts.get(volume) == mount, (name, volume)
            assert service["environment"][variable] == mount, (name, variable)
        assert service["environment"]["CROWDNET_VAR_DIR"] == "/data/var"
    assert set(SHARED_MOUNTS) <= set(base["volumes"])
    assert set(variable for _mount, variable in SHARED_MOUNTS.values()) <= _settings_env_names()


def test_the_s3_override_switches_every_container_to_one_bucket():
    base = _compose("docker-compose.yml")
    override = _compose("docker-compose.s3.yml")
    known = _settings_env_names()
    for name in _app_services(base):
        service = override["services"][name]
        environment = service["environment"]
        assert environment["CROWDNET_STORAGE"] == "s3", name
        assert {key for key in environment if key.startswith("CROWDNET_")} <= known
        assert {
            "CROWDNET_S3_BUCKET",
            "CROWDNET_S3_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        } <= set(environment)
        assert service["depends_on"]["minio-bucket"]["condition"] == (
            "service_completed_successfully"
        )
    minio = override["services"]["minio"]
    bucket = override["services"]["minio-bucket"]
    assert bucket["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "mc mb --ignore-existing" in " ".join(bucket["command"])
    endpoint = override["services"]["web"]["environment"]["CROWDNET_S3_ENDPOINT_URL"]
    assert endpoint.endswith("http://minio:9000}")
    assert minio["command"][:2] == ["server", "/data"]
    # The app signs in as a user limited to the bucket, never as MinIO's root.
    app_key = override["services"]["web"]["environment"]["AWS_ACCESS_KEY_ID"]
    assert "MINIO_ROOT" not in app_key and app_key == "${MINIO_APP_USER:-crowdnet-app}"
    init = " ".join(bucket["command"])
    assert 'mc admin user add local "$$APP_USER"' in init
    assert '"Resource":["arn:aws:s3:::%s/*"]' in init


def test_the_scale_override_puts_two_web_nodes_behind_the_proxy():
    base = _compose("docker-compose.yml")
    override = _compose("docker-compose.scale.yml")
    services = override["services"]
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["web"]["ports"] == {"reset": True}
    bind = base["services"]["web"]["command"]
    port = bind[bind.index("--bind") + 1].rsplit(":", 1)[1]
    conf = (DOCKER / "nginx-scale.conf").read_text()
    assert re.search(rf"server web:{port}\b", conf)
    listen = re.search(r"listen (\d+);", conf).group(1)
    assert services["proxy"]["ports"] == ["127.0.0.1:${CROWDNET_PORT:-8000}:" + listen]
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in conf
    # The base stack trusts one proxy hop for client addresses; the proxy is that hop.
    assert base["x-crowdnet-env"]["CROWDNET_NUM_PROXIES"] == "${CROWDNET_NUM_PROXIES:-1}"


@pytest.mark.parametrize(
    "name", ["docker-compose.yml", "docker-compose.s3.yml", "docker-compose.scale.yml"]
)
def test_compose_files_name_only_services_that_exist(name):
    base = _compose("docker-compose.yml")
    compose = _compose(name)
    known = set(base["services"]) | set(compose["services"])
    for service in compose["services"].values():
        assert set(service.get("depends_on", {})) <= known
