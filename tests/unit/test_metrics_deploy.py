"""The deployment files parse and agree with each other and with the code: replicas, probes,
non-root user, one image, a non-superuser database role, dashboard queries on real metric names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from app.observability.metrics import Metrics
from app.upstream.config import parse_router_config, validate_router_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d
        for path in sorted(K8S.glob("*.yaml"))
        for d in documents(path)
        if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    return k8s("Deployment", "deja")


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


@pytest.mark.parametrize(
    "path",
    [*sorted(K8S.glob("*.yaml")), ROOT / "deploy" / "prometheus.yml", ROOT / "compose.yaml"],
    ids=lambda p: p.name,
)
def test_yaml_parses(path: Path) -> None:
    assert documents(path)


def test_kustomization_lists_existing_files() -> None:
    (kustomization,) = documents(K8S / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    # Real secrets are created out of band; the Job runs on its own before a rollout.
    assert "secret.example.yaml" not in kustomization["resources"]
    assert "migrate-job.yaml" not in kustomization["resources"]


def test_deployment(deployment: dict[str, Any]) -> None:
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    api = container(deployment)
    assert spec["replicas"] == 3
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["startupProbe"]["httpGet"]["path"] == "/health"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_uid()
    assert api["securityContext"]["allowPrivilegeEscalation"] is False
    assert api["securityContext"]["readOnlyRootFilesystem"] is True
    # More than uvicorn's 30 s graceful shutdown plus the preStop pause.
    assert pod["terminationGracePeriodSeconds"] > 30 + 5
    env = {e["name"]: e.get("value") for e in api["env"]}
    assert env["DEJA_MIGRATE_ON_START"] == "false"
    assert {m["mountPath"] for m in api["volumeMounts"]} >= {env["DEJA_DATA_DIR"], "/tmp"}  # noqa: S108
    assert api["resources"]["requests"]["memory"]
    assert api["resources"]["limits"]["memory"]
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(api["ports"][0]["containerPort"])


def test_one_image_for_api_and_migrations(deployment: dict[str, Any]) -> None:
    job = k8s("Job", "deja-migrate")
    assert container(job)["image"] == container(deployment)["image"]
    assert container(job)["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_service_hpa_pdb_point_at_the_pods(deployment: dict[str, Any]) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = k8s("Service", "deja")
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in container(deployment)["ports"]}
    assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])
    pdb = k8s("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    hpa = k8s("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"]


def test_router_config_in_the_configmap_is_valid(deployment: dict[str, Any]) -> None:
    config_map = k8s("ConfigMap", "deja-config")
    config = parse_router_config(config_map["data"]["deja.toml"], source="configmap")
    validate_router_config(config)
    env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
    assert env["DEJA_CONFIG"].endswith("/deja.toml")
    # Every key variable the config names is one the (example) Secret provides.
    secret = k8s("Secret", "deja")
    assert {u.api_key_env for u in config.upstreams if u.api_key_env} <= secret["stringData"].keys()
    assert {"DEJA_DATABASE_URL"} <= secret["stringData"].keys()


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def dockerfile_uid() -> int:
    match = re.search(r"^USER (\d+)", dockerfile(), re.MULTILINE)
    assert match, "the runtime stage must switch to a numeric non-root user"
    return int(match.group(1))


def test_dockerfile() -> None:
    text = dockerfile()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.MULTILINE)
    assert [name for _, name in stages] == ["builder", "runtime"]
    assert dockerfile_uid() != 0
    runtime = text.split("AS runtime", 1)[1]
    assert "build-essential" not in runtime
    assert "HEALTHCHECK" in runtime
    assert "/health" in runtime
    for needed in ("alembic.ini", "migrations", "sql", "app"):
        assert re.search(rf"^COPY .*\b{re.escape(needed)}\b", text, re.MULTILINE), needed
    assert "torch" not in text.lower().replace("pytorch", "")
    assert "[train]" not in text
    assert ".[" not in text


def test_dockerignore_lets_the_build_inputs_through() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") :]  # allow-list
    for path in ("pyproject.toml", "README.md", "alembic.ini", "app/", "migrations/", "sql/"):
        assert f"!{path}" in lines
    assert "**/.env" in lines


def test_compose() -> None:
    (compose,) = documents(ROOT / "compose.yaml")
    services = compose["services"]
    assert services["db"]["image"] == "pgvector/pgvector:pg18"
    assert "healthcheck" in services["db"]
    init = next(v for v in services["db"]["volumes"] if "docker-entrypoint-initdb.d" in v)
    script = (ROOT / init.split(":")[0]).read_text()
    assert "NOSUPERUSER" in script
    assert "NOBYPASSRLS" in script
    assert "CREATE EXTENSION IF NOT EXISTS vector" in script
    for name in ("migrate", "api"):
        url = services[name]["environment"]["DEJA_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://deja:")
        assert url.endswith("@db:5432/deja")
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["api"]["build"]["context"] == "."
    assert services["fake-llm"]["profiles"]
    assert services["prometheus"]["profiles"]
    prometheus_config = next(v for v in services["prometheus"]["volumes"] if "prometheus.yml" in v)
    assert (ROOT / prometheus_config.split(":")[0]).is_file()


def exported_series() -> set[str]:
    names: set[str] = set()
    for family in Metrics(CollectorRegistry()).__dict__.values():
        describe = getattr(family, "describe", None)
        for metric in describe() if describe else []:
            base = metric.name
            names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names


def test_dashboard_queries_use_exported_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "deja-dashboard.json").read_text())
    assert dashboard["uid"]
    assert dashboard["schemaVersion"] >= 30
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    exported = exported_series()
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(expressions) >= 15
    used = {m for e in expressions for m in re.findall(r"\b((?:ai|deja)_[a-z_]+)\b", e)}
    assert used <= exported, used - exported
    # Every family is on the dashboard somewhere.
    assert {"ai_requests_total", "deja_circuit_breaker_open", "deja_quota_rejections_total"} <= used
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
