"""The deployment files agree with the code: metric names, settings, ports, pinned images."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml
from packaging.markers import Marker
from packaging.utils import canonicalize_name
from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from stream.changelog_metrics import ChangelogMetrics
from stream.collector.telemetry import CollectorTelemetry
from stream.settings import Settings
from stream.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_METRIC = re.compile(r"\b((?:upsell|process)_[a-z_]+|up)\b")


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    t = Telemetry(registry=registry)
    ProcessCollector(registry=registry)
    ChangelogMetrics(registry)  # the worker registers them beside Telemetry's
    t.events.labels("x", "counted").inc()
    t.dead_letters.labels("x").inc()
    t.unreadable_batches.labels("x").inc()
    t.redis_errors.labels("x").inc()
    t.consumer_lag.labels("x", "0").set(0)
    t.consumer_lag_seconds.labels("x", "0").set(0)
    t.last_applied_timestamp.labels("x", "0").set(0)
    t.topic_partitions.labels("x").set(0)
    t.log_restarts.labels("x").inc()
    t.records_lost.labels("x").inc()
    t.assigned_partitions.labels("x").set(0)
    t.worker_info.info({"version": "0"})
    t.api_request_seconds.labels("/", "GET", "200").observe(0.1)
    t.api_busy.labels("/").inc()
    t.redis_rewinds.labels("x").inc()
    t.redis_memory.labels("used").set(0)
    c = CollectorTelemetry()
    c.requests.labels("/v1/collect", "202").inc()
    c.rate_limited.labels("key").inc()
    c.produce_seconds.observe(0.01)
    c.info.info({"version": "0"})
    names = {"up"}
    for family in [*registry.collect(), *c.registry.collect()]:
        for sample in family.samples:
            names.add(sample.name)
    return names


def used_in_board() -> set[str]:
    board = json.loads((DEPLOY / "grafana" / "upsell-stream.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    return {m for e in exprs for m in _METRIC.findall(e)}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def used_in_alerts() -> set[str]:
    exprs = [r["expr"] for r in _rules()]
    recorded = {r["record"] for r in _rules() if "record" in r}
    return {m for e in exprs for m in _METRIC.findall(e)} - recorded


def test_every_alert_is_actionable_and_tested() -> None:
    """for:, severity, summary, description and an absolute runbook URL whose anchor exists in
    docs/operations.md; no job selector (Compose and Kubernetes name jobs differently); and a
    promtool test that sees it fire."""
    guide = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", guide, re.MULTILINE)
    }
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    alerts = [r for r in _rules() if "alert" in r]
    names = {r["alert"] for r in alerts}
    assert {
        "UpsellCountingStalled",
        "UpsellLagSecondsHigh",
        "UpsellLogRestarted",
        "UpsellRecordsLost",
        "UpsellWorkerRestarts",
        "UpsellHttp5xx",
        "UpsellApiLatencyBurnFast",
        "UpsellPartitionsUnowned",
        "UpsellRetentionSweepNotRunning",
        "UpsellTargetsAbsent",
    } <= names
    for rule in alerts:
        name = rule["alert"]
        assert "for" in rule and rule["labels"]["severity"] in ("warning", "critical"), name
        notes = rule["annotations"]
        assert notes["summary"] and len(notes["description"]) > 40, name
        base, _, anchor = notes["runbook_url"].partition("#")
        assert base.startswith("https://") and base.endswith("/docs/operations.md"), name
        assert anchor == name.lower() and anchor in anchors, f"no runbook section for {name}"
        assert "job=" not in rule["expr"].replace(" ", ""), f"{name} selects a job"
        assert name in fired, f"no promtool test sees {name} fire"
    down = next(r for r in alerts if r["alert"] == "UpsellWorkerDown")
    assert down["labels"]["severity"] == "warning", "one lost worker among N is not a page"


def test_board_is_templated_and_job_agnostic() -> None:
    board = json.loads((DEPLOY / "grafana" / "upsell-stream.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert {"instance", "topic"} <= set(variables)
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        unit = panel["fieldConfig"]["defaults"]["unit"]
        title = panel["title"].lower()
        if "latency" in title or "seconds" in title or "freshness" in title:
            assert unit == "s", title
        for target in panel["targets"]:
            expr = target["expr"]
            assert '$instance"' in expr and "job=" not in expr, (panel["title"], expr)
            if "upsell_api_request" in expr:
                assert "/readyz" in expr, f"probes are left out of {panel['title']}"


def test_board_and_alerts_use_only_exported_metrics() -> None:
    exported = exported_names()
    for name in used_in_board() | used_in_alerts():
        assert name in exported, f"{name} is used by the board or alerts but not exported"


def test_board_covers_what_operators_need() -> None:
    titles = " ".join(
        p["title"].lower()
        for p in json.loads((DEPLOY / "grafana" / "upsell-stream.json").read_text())["panels"]
    )
    for word in (
        "throughput",
        "lag",
        "freshness",
        "dead letters",
        "apply latency",
        "api latency",
        "redis",
    ):
        assert word in titles, word


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def test_compose_services_images_pinned() -> None:
    services = _compose()["services"]
    assert {"kafka", "redis", "worker-1", "worker-2", "demo", "prometheus", "grafana"} <= set(
        services
    )
    for name, svc in services.items():
        image = svc.get("image")
        if name.startswith("worker") or name == "demo":
            assert svc.get("build") or image == "upsell-stream:local"
            continue
        assert image and ":" in image, name
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), (name, image)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "--appendonly" in services["redis"]["command"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_compose_environment_is_valid_settings() -> None:
    services = _compose()["services"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert scrape["scrape_configs"][0]["job_name"] == "upsell-stream"
    for name in ("worker-1", "worker-2"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        assert all(k.startswith("UPSELL_") for k in env)
        settings = Settings.from_env(env)
        assert settings.kafka_bootstrap == "kafka:9092"
        assert any(p.endswith(f":{settings.api_port}") for p in services[name]["ports"])
        assert f"{name}:{settings.api_port}" in targets


ROLES = ("worker", "api", "collector")


def _by_role(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    found = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in docs if d["kind"] == kind
    }
    assert set(found) == set(ROLES), f"one {kind} per role: {sorted(found)}"
    return found


def test_k8s_manifests_probe_each_roles_port(tmp_path: Path) -> None:
    docs = _k8s_docs()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert {"HorizontalPodAutoscaler", "Ingress"} <= kinds
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    tokens = tmp_path / "tokens"
    tokens.write_text("")
    settings = Settings.from_env({**config, "UPSELL_API_TOKENS": str(tokens)})
    ports = {"worker": settings.api_port, "api": settings.api_port}
    ports["collector"] = settings.collector.port
    services = _by_role(docs, "Service")
    _by_role(docs, "PodDisruptionBudget")
    _by_role(docs, "NetworkPolicy")
    for role, deployment in _by_role(docs, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [role]
        port = ports[role]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert container["resources"]["requests"]["cpu"]
        assert services[role]["spec"]["ports"][0]["targetPort"] == port
        assert deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def _k8s_docs() -> list[dict[str, Any]]:
    return [
        d
        for f in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
    ]


def _image_uid() -> int:
    text = (DEPLOY / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", text, re.MULTILINE)
    assert user, "the image names its user by number (runAsNonRoot cannot verify a name)"
    assert int(user[1]) > 0 and int(user[2]) > 0
    return int(user[1])


def test_dockerfile_runs_as_a_numeric_non_root_user_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.count("FROM ") >= 2
    assert _image_uid() >= 1000
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "UPSELL_DATA_DIR=/app/data" in text and 'VOLUME ["/app/data"]' in text


def locked_runtime() -> dict[str, str]:
    """deploy/requirements.lock (the lock's hashed runtime part, ``make lock``): the version of each
    runtime dependency whose environment marker holds for this interpreter, by normalised name."""
    pins: dict[str, str] = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)(?: ; ([^\\]+?))?(?: \\)?$", line)
        if found and (found[3] is None or Marker(found[3]).evaluate()):
            pins[canonicalize_name(found[1])] = found[2]
    return pins


def test_image_installs_the_locked_versions_the_tests_ran() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in text, "the image installs the hashed lock"
    assert "--no-deps ." in text, "the project itself brings no unlocked dependency"
    lock = (DEPLOY / "requirements.lock").read_text()
    pins = locked_runtime()
    assert len(pins) >= 20 and lock.count("==") <= lock.count("--hash=sha256:"), "hashed pins"
    project = (ROOT / "pyproject.toml").read_text()
    # up to the list's own closing line: an extra's "]" (aiokafka[snappy,...]) ended it early
    runtime = re.search(r"^dependencies = \[(.*?)^\]", project, re.MULTILINE | re.DOTALL)
    assert runtime
    for requirement in re.findall(r'"([A-Za-z0-9_.-]+)', runtime[1]):
        assert canonicalize_name(requirement) in pins, f"{requirement} is not in the lock"
    # every locked package, not only the direct ones: the tests ran exactly the image's set
    for name, locked in pins.items():
        assert version(name) == locked, f"{name}: tests ran {version(name)}, the lock has {locked}"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("**")] == "**", "the build context admits only what it needs"
    assert "!deploy/requirements.lock" in ignored


def test_k8s_pods_are_hardened_and_write_only_their_data_dir() -> None:
    docs = _k8s_docs()
    for deployment in _by_role(docs, "Deployment").values():
        _hardened(docs, deployment["spec"]["template"]["spec"])


def _hardened(docs: list[dict[str, Any]], pod: dict[str, Any]) -> None:
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    (container,) = pod["containers"]
    uid = _image_uid()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == container["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[config["UPSELL_DATA_DIR"]]], "the data dir is writable"
    assert "emptyDir" in volumes[mounts["/tmp"]]
    prestop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert prestop[0] == "sleep" and int(prestop[1]) >= 5
    assert pod["terminationGracePeriodSeconds"] > int(prestop[1]) + 20
    assert container["readinessProbe"]["timeoutSeconds"] > 1, "longer than the checks' 1 s"
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} >= {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }


def test_k8s_secrets_stay_out_of_the_configmap() -> None:
    docs = _k8s_docs()
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert "UPSELL_REDIS_URL" not in config
    assert int(config["UPSELL_REPLICATION_FACTOR"]) == 3
    assert int(config["UPSELL_MIN_INSYNC_REPLICAS"]) == 2
    pod = _by_role(docs, "Deployment")["worker"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    redis = env["UPSELL_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    tokens = next(v for v in pod["volumes"] if v["name"] == "tokens")["secret"]["secretName"]
    guide = (ROOT / "docs" / "operations.md").read_text()
    for secret in (redis["name"], tokens):
        assert f"kubectl create secret generic {secret}" in guide, secret


def test_compose_workers_run_as_the_pod_does() -> None:
    services = _compose()["services"]
    uid = _image_uid()
    for name in ("worker-1", "worker-2"):
        svc = services[name]
        assert svc["user"] == f"{uid}:{uid}" and svc["read_only"] is True
        assert svc["cap_drop"] == ["ALL"]
        data_dir = svc["environment"]["UPSELL_DATA_DIR"]
        assert any(v.endswith(f":{data_dir}") for v in svc["volumes"]), name
