"""manifests/base/monitoring: the Prometheus Operator objects are valid for their CRDs (jsonschema on
the CRDs' openAPIV3Schema, unknown fields refused), every metric an alert or a panel reads is one
the code exports, and both overlays build with them."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tools.validate_manifests import strict_schema  # the validator's own strictness

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "base" / "monitoring"
CRDS = ROOT.parent / "shared" / "crds"
METRIC = re.compile(r"\b(naviyam_[a-z0-9_]+|request_predict_seconds_bucket)\b")
RECORDED = re.compile(r"\bnaviyam:[a-z0-9_:]+")


def objects() -> list[dict]:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        out += [d for d in yaml.safe_load_all((MONITORING / name).read_text()) if d]
    return out


def by_kind(kind: str) -> list[dict]:
    return [o for o in objects() if o["kind"] == kind]


def crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    out = {}
    for path in sorted(CRDS.glob("monitoring.coreos.com_*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            for version in crd["spec"]["versions"]:
                schema = strict_schema(version["schema"]["openAPIV3Schema"])
                out[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = \
                    jsonschema.Draft7Validator(schema)
    return out


def test_monitoring_objects_match_the_prometheus_operator_crds():
    if not any(CRDS.glob("monitoring.coreos.com_*.yaml")):
        pytest.skip(f"Prometheus Operator CRDs not found at {CRDS}")
    validators = crd_validators()
    checked = set()
    for obj in objects():
        if not obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        validator = validators[(obj["apiVersion"], obj["kind"])]
        problems = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
        assert not problems, f"{obj['kind']}/{obj['metadata']['name']}: {problems}"
        checked.add(obj["kind"])
    assert checked == {"PodMonitor", "ServiceMonitor", "PrometheusRule"}


def test_the_strict_schema_would_catch_a_typo():
    if not any(CRDS.glob("monitoring.coreos.com_*.yaml")):
        pytest.skip(f"Prometheus Operator CRDs not found at {CRDS}")
    pod_monitor = by_kind("PodMonitor")[0]
    broken = json.loads(json.dumps(pod_monitor))
    broken["spec"]["podMetricsEndpoints"][0]["portNumbr"] = 8080
    assert list(crd_validators()[("monitoring.coreos.com/v1", "PodMonitor")].iter_errors(broken))


def exported_names(tmp_path) -> set[str]:
    """Every sample name the code can expose: naviyam.metrics, the router's, the feedback service's."""
    from prometheus_client import CollectorRegistry

    from components.feedback import FeedbackMetrics, LoopStateCollector
    from inference_graph.metrics import RouterMetrics
    from naviyam.config import Settings
    from naviyam.metrics import ChatMetrics, FeatureStoreMetrics
    from naviyam.registry import ModelRegistry
    from pipelines.steps import RETRAIN_REQUESTS

    registry = CollectorRegistry()
    ChatMetrics(registry)
    FeatureStoreMetrics(registry)
    RouterMetrics(registry)
    FeedbackMetrics(registry)
    settings = Settings(home=tmp_path)
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / RETRAIN_REQUESTS).write_text('{"at": "2026-12-02T10:00:00+00:00"}\n')
    registry.register(LoopStateCollector(settings, ModelRegistry.from_settings(settings)))
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + s for family in registry.collect() for s in suffixes.get(family.type, ("",))}


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule and every dashboard panel."""
    out = []
    for rule_set in by_kind("PrometheusRule"):
        for group in rule_set["spec"]["groups"]:
            for rule in group["rules"]:
                out.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r}", target["expr"]))
    return out


def test_every_metric_an_alert_or_a_panel_reads_is_exported(tmp_path):
    exported = exported_names(tmp_path)
    recorded = {r["record"] for rs in by_kind("PrometheusRule") for g in rs["spec"]["groups"] for r in g["rules"]
                if "record" in r}
    for where, expr in queries():
        assert expr.count("(") == expr.count(")"), where
        unknown = {m for m in METRIC.findall(expr) if m.startswith("naviyam_")} - exported
        assert not unknown, f"{where}: {sorted(unknown)} are not exported by the code"
        assert set(RECORDED.findall(expr)) <= recorded, f"{where}: reads a rule nobody records"


def test_the_alerts_the_issue_asks_for_are_there():
    alerts = {r["alert"]: r for rs in by_kind("PrometheusRule") for g in rs["spec"]["groups"] for r in g["rules"]
              if "alert" in r}
    assert {"NaviyamDegradedAnswersHigh", "NaviyamCanaryErrorRateHigh", "NaviyamDriftRetrainRequested",
            "NaviyamFeatureStoreDown"} <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_the_pod_monitor_scrapes_every_inference_service_and_the_service_monitor_the_feedback_service():
    base = ROOT / "manifests" / "base"
    isvcs = {d["metadata"]["name"] for p in base.glob("isvc-*.yaml") for d in yaml.safe_load_all(p.read_text())
             if d and d["kind"] == "InferenceService"}
    selector = by_kind("PodMonitor")[0]["spec"]["selector"]["matchExpressions"][0]
    assert selector["key"] == "serving.kserve.io/inferenceservice" and set(selector["values"]) == isvcs
    assert by_kind("PodMonitor")[0]["spec"]["podMetricsEndpoints"][0]["portNumber"] == 8080
    feedback = [d for d in yaml.safe_load_all((base / "feedback.yaml").read_text()) if d and d["kind"] == "Service"][0]
    monitor = by_kind("ServiceMonitor")[0]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= feedback["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in feedback["spec"]["ports"]}


def kubectl() -> str | None:
    local = ROOT / ".venv" / "bin" / "kubectl"
    return str(local) if local.exists() else shutil.which("kubectl")


@pytest.mark.parametrize("overlay", ["local-kind", "prod"])
def test_both_overlays_build_with_the_monitoring_objects_and_the_dashboard(overlay):
    binary = kubectl()
    if binary is None:
        pytest.skip("no kubectl (make venv installs one into .venv/bin)")
    built = subprocess.run([binary, "kustomize", str(ROOT / "manifests" / "overlays" / overlay)],
                           capture_output=True, text=True, timeout=120, check=True).stdout
    docs = [d for d in yaml.safe_load_all(built) if d]
    kinds = {d["kind"] for d in docs}
    assert {"PodMonitor", "ServiceMonitor", "PrometheusRule"} <= kinds
    dashboard = next(d for d in docs
                     if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "naviyam-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["naviyam.json"])["uid"] == "naviyam-chatbot"
    assert all(d["metadata"].get("namespace") == "naviyam" for d in docs
               if d["kind"] in ("PodMonitor", "ServiceMonitor", "PrometheusRule", "ConfigMap"))
