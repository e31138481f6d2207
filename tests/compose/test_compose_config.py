"""docker-compose.test.yaml and its files, checked without a Docker daemon (fast).

``docker-compose config`` validates and resolves the file (variables, anchors) with no daemon; the resolved
form is then held to the stack's rules: loopback-only ports, init, healthchecks, the two Dockerfile targets
and the base image taken from ``AKTO_BASE_IMAGE``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_stack import COMPOSE_FILE, REPO_ROOT, SERVICES

needs_compose = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
BASE = "example.invalid/base:3.11"


def compose_config(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LITELLM_MASTER_KEY": "sk-compose-config-test-" + "x" * 24,
                   "AKTO_BASE_IMAGE": BASE, **env}
    return subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config", *args], cwd=REPO_ROOT,
                          env=environment, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = compose_config()
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@needs_compose
def test_config_is_valid() -> None:
    result = compose_config("-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


@needs_compose
def test_an_empty_litellm_master_key_is_refused_naming_it() -> None:
    result = compose_config("-q", LITELLM_MASTER_KEY="")
    assert result.returncode != 0
    assert "LITELLM_MASTER_KEY" in result.stderr and ".env.example" in result.stderr


@needs_compose
def test_services_are_the_stack_the_test_drives(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == set(SERVICES)


def _published(port: Any) -> tuple[str, str]:
    """(host ip, container port) from the short (1.29) or long (Compose v2) form."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), str(port["target"])
    host_ip, _, rest = str(port).partition(":")
    return host_ip, rest.rsplit(":", 1)[-1].split("/")[0]


@needs_compose
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_follows_the_stack_rules(resolved: dict[str, Any], service: str) -> None:
    spec = resolved["services"][service]
    assert spec["init"] is True, "Python as PID 1 ignores SIGTERM: init: true"
    assert spec["healthcheck"]["test"][0] == "CMD"
    assert spec["build"]["target"] in {"main", "mitm"}
    assert spec["build"]["args"]["BASE_IMAGE"] == BASE
    assert spec["build"]["dockerfile"] == "docker/Dockerfile"
    published = [_published(port) for port in spec["ports"]]
    assert published == [("127.0.0.1", str(SERVICES[service][0]))]
    assert any("0.0.0.0" in str(arg) for arg in spec["command"]), "inside the container: bind 0.0.0.0"


@needs_compose
def test_base_image_defaults_to_python_slim() -> None:
    dotenv = REPO_ROOT / ".env"
    if dotenv.exists() and re.search(r"^AKTO_BASE_IMAGE=", dotenv.read_text(), re.MULTILINE):
        pytest.skip("the local .env sets AKTO_BASE_IMAGE")
    env = {k: v for k, v in os.environ.items() if k != "AKTO_BASE_IMAGE"}
    env["LITELLM_MASTER_KEY"] = "sk-compose-config-test-" + "x" * 24
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    builds = {spec["build"]["args"]["BASE_IMAGE"] for spec in yaml.safe_load(result.stdout)["services"].values()}
    assert builds == {"python:3.11-slim"}


def test_env_example_commits_no_litellm_key() -> None:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    assert "LITELLM_MASTER_KEY=" in lines, "the placeholder must stay empty (the compose file refuses empty)"
    assert not any(re.match(r"\s*[A-Z_]*(KEY|SECRET|TOKEN)=\S", line) for line in lines)


def test_dockerignore_lets_through_everything_the_dockerfile_copies() -> None:
    allowed = {line[1:].strip().rstrip("/") for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    sources: list[str] = []
    for line in (REPO_ROOT / "docker" / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    assert sources
    missing = [s for s in sources if not any(s == a or s.startswith(a + "/") for a in allowed)]
    assert not missing, f".dockerignore excludes {missing}: the build would fail"
    for source in sources:
        assert (REPO_ROOT / source).exists(), source


@pytest.mark.slow  # importing litellm takes seconds
def test_litellm_config_loads_the_reference_hook_with_valid_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else importing litellm downloads its price map
    pytest.importorskip("litellm")
    from reference_impl.litellm.guardrail import load_settings
    from reference_impl.litellm.startup import problems_in_file

    path = REPO_ROOT / "docker" / "config" / "litellm.yaml"
    env = {"AKTO_GUARDRAIL_API_BASE": "http://mock-akto:8090", "AKTO_API_KEY": "akto-config-test-key"}
    assert problems_in_file(path, "AktoGuardrail", load_settings, env=env) == []
    config = yaml.safe_load(path.read_text())
    modes = {e["guardrail_name"]: e["litellm_params"]["mode"] for e in config["guardrails"]}
    assert modes == {"akto-validate": "pre_call", "akto-ingest": "post_call"}
    assert {m["litellm_params"]["api_base"] for m in config["model_list"]} == {"http://fake-llm:8000/v1"}
