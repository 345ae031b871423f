"""tools/validate_manifests: both overlays pass, and each kind of breakage fails loudly with its own message."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import validate_manifests as vm  # noqa: E402

CRDS = ROOT.parent / "shared" / "crds"


def crds_present() -> bool:
    return CRDS.is_dir() and any(CRDS.glob("*.yaml"))


needs_crds = pytest.mark.skipif(not crds_present(), reason=f"CRD schemas not found at {CRDS} "
                                                           "(../shared/crds beside the checkout)")

OVERLAYS = ["local-kind", "prod"]


def errors_matching(report: vm.Report, *needles: str) -> list[str]:
    return [e for e in report.errors if all(n in e for n in needles)]


def assert_fails(report: vm.Report, *needles: str) -> None:
    assert not report.ok, "the validator passed a broken manifest"
    hits = errors_matching(report, *needles)
    assert hits, "expected an error containing " + " & ".join(map(repr, needles)) + ", got:\n" + "\n".join(report.errors)


# -- the real manifests ---------------------------------------------------------------------------

@pytest.mark.usefixtures("kubectl")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes(overlay: str):
    repo = vm.Repo.load(ROOT)
    report = vm.validate(repo, [overlay])
    assert report.ok, "\n".join(report.errors)
    assert any(f"[{overlay}] built " in n and "kubectl kustomize" in n for n in report.notes)
    assert any("deployment mode: " + ("Standard" if overlay == "local-kind" else "Knative") in n for n in report.notes)


@pytest.mark.usefixtures("kubectl")
def test_cli_passes_and_explains_itself():
    proc = subprocess.run([sys.executable, "-m", "tools.validate_manifests"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK:" in proc.stdout
    assert ("secrets to create before applying: naviyam-feedback/token, naviyam-postgres/dsn, "
            "naviyam-postgres/password, naviyam-redis/password") in proc.stdout
    assert "optional secrets (features stay off without them): naviyam-admin/token" in proc.stdout
    help_text = subprocess.run([sys.executable, "-m", "tools.validate_manifests", "--help"],
                               cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    assert "canaryTrafficPercent only in Knative mode" in help_text


def test_cli_exits_non_zero_on_a_broken_overlay(sandbox):
    sandbox.edit("base/isvc-nlu.yaml", '"--model_name", "naviyam-nlu"', '"--model_name", "naviyam-nlux"')
    proc = subprocess.run([sys.executable, "-m", "tools.validate_manifests", "--overlay", "local-kind",
                           "--manifests", str(sandbox.manifests), "--docker", str(sandbox.docker)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "ERROR [local-kind] InferenceService/naviyam-nlu/predictor" in proc.stdout
    assert "FAILED" in proc.stdout


def test_graph_copy_is_in_sync():
    repo = vm.Repo.load(ROOT)
    assert vm.check_graph_copy(repo) == []


def test_kserve_flags_match_the_installed_kserve():
    """KSERVE_SERVER_FLAGS is a copy of kserve.model_server.parser's options (importing it parses argv)."""
    code = ("import sys; sys.argv = ['x']\nfrom kserve import model_server\n"
            "print('\\n'.join(o for a in model_server.parser._actions for o in a.option_strings if o.startswith('--')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"kserve not importable: {proc.stderr.strip()[-200:]}")
    installed = set(proc.stdout.split()) - {"--help"}
    assert vm.KSERVE_SERVER_FLAGS <= installed, vm.KSERVE_SERVER_FLAGS - installed


# -- breakages made by editing the manifests, each failing with its own message ---------------------

def breakage(name: str, overlay: str, edits: list[tuple], *errors: str | tuple[str, ...], marks=()):
    """A test case: ``edits`` are ``Sandbox.edit`` arguments (file under manifests/, old, new[, count]);
    building ``overlay`` must then fail with, for each of ``errors``, an error containing its text(s)."""
    needles = [e if isinstance(e, tuple) else (e,) for e in errors]
    return pytest.param(overlay, edits, needles, id=name, marks=marks)


BREAKAGES = [
    # the six breakages of the brief
    breakage("unknown_field_in_an_inference_service", "prod",
             [("base/isvc-nlu.yaml", "    automountServiceAccountToken: false",
               "    automountServiceAccountToken: false\n    minReplica: 2")],
             ("InferenceService/naviyam-nlu", "CRD schema", "spec.predictor", "unknown field", "minReplica"),
             marks=needs_crds),
    breakage("wrong_service_name_in_the_graph", "local-kind",
             [("base/inference-graph.yaml", "serviceName: naviyam-nlu", "serviceName: naviyam-nlu-v2")],
             ("InferenceGraph/naviyam", "serviceName naviyam-nlu-v2 is not an InferenceService"),
             "inference-graph.yaml differs from inference_graph/naviyam.yaml"),
    # The feedback pod sets it twice (pod and container): drop both.
    breakage("missing_run_as_non_root", "local-kind",
             [("base/feedback.yaml", "        runAsNonRoot: true\n", ""),
              ("base/feedback.yaml", "            runAsNonRoot: true\n", "")],
             ("Deployment/naviyam-feedback", "(feedback)", "runAsNonRoot must be true")),
    breakage("canary_in_raw_deployment_mode", "local-kind",
             [("overlays/local-kind/kustomization.yaml", "        transformer:\n          minReplicas: 1",
               "        predictor:\n          canaryTrafficPercent: 10\n"
               "        transformer:\n          minReplicas: 1")],
             ("InferenceService/naviyam-ranker/predictor",
              "canaryTrafficPercent is ignored in Standard (RawDeployment) mode")),
    breakage("image_without_a_dockerfile", "prod",
             [("base/isvc-retriever.yaml", "image: naviyam-retriever", "image: naviyam-retriever-gpu")],
             ("InferenceService/naviyam-retriever/predictor",
              "no Dockerfile dockerfiles/naviyam-retriever-gpu.Dockerfile")),
    breakage("component_without_a_manifest", "prod",
             [("base/kustomization.yaml", "  - isvc-candidates.yaml\n", "")],
             ("component naviyam-candidates", "has no manifest"),
             "serving.service_urls.naviyam-candidates: no such InferenceService"),
    breakage("manifest_of_an_unknown_component", "local-kind",
             [("base/isvc-ranker.yaml", '"--component", "naviyam-ranker-predictor"',
               '"--component", "naviyam-ranker-scorer"')],
             ("InferenceService/naviyam-ranker/predictor",
              "--component naviyam-ranker-scorer is not one of components/server.py COMPONENTS")),
    # more breakages
    breakage("kustomize_errors_fail_the_build", "local-kind",
             [("base/kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - missing.yaml\n")],
             ("[local-kind] build", "kubectl kustomize", "missing.yaml")),
    breakage("unknown_field_in_a_built_in_kind", "local-kind",
             [("base/redis.yaml", "  revisionHistoryLimit: 3\n", "  revisionHistoryLimit: 3\n  replica: 2\n")],
             ("Deployment/naviyam-redis", "kubernetes-validate --strict", "replica")),
    breakage("model_name_must_be_the_inference_service_name", "local-kind",
             [("base/isvc-nlu.yaml", '"--model_name", "naviyam-nlu"', '"--model_name", "nlu"')],
             "--model_name nlu differs from the InferenceService name naviyam-nlu"),
    breakage("model_server_port_and_probes", "local-kind",
             [("base/isvc-candidates.yaml", "path: /v2/models/naviyam-candidates/ready", "path: /v2/health/ready"),
              ("base/isvc-candidates.yaml", '"--http_port", "8080"', '"--http_port", "9103"')],
             ("naviyam-candidates/predictor", "readinessProbe must be httpGet /v2/models/naviyam-candidates/ready"),
             ("naviyam-candidates/predictor", "--http_port 9103")),
    breakage("feedback_port_must_agree", "local-kind",
             [("base/feedback.yaml", 'args: ["--port", "9107"]', 'args: ["--port", "8000"]')],
             ("Deployment/naviyam-feedback", "--port 8000 is not a containerPort"),
             "--port 8000 differs from serving.ports.naviyam-feedback (9107)"),
    breakage("transformer_must_not_hard_code_the_predictor_host", "prod",
             [("base/isvc-ranker.yaml", '"--predictor_protocol", "v2"',
               '"--predictor_host", "naviyam-ranker-predictor", "--predictor_protocol", "v2"')],
             ("naviyam-ranker/transformer", "--predictor_host is set by KServe")),
    breakage("every_service_must_state_its_deployment_mode", "prod",
             [("overlays/prod/kustomization.yaml", "          serving.kserve.io/deploymentMode: Knative\n", "")],
             ("InferenceGraph/naviyam", "no serving.kserve.io/deploymentMode annotation")),
    breakage("knative_mode_requires_the_learning_loop_canaries", "prod",
             [("overlays/prod/kustomization.yaml",
               "      spec:\n        predictor:\n          canaryTrafficPercent: 10\n  # GPU",
               "      spec:\n        predictor:\n          minReplicas: 2\n  # GPU")],
             ("InferenceService/naviyam-nlg/predictor", "the learning loop canaries this service")),
    breakage("hpa_metric_in_knative_mode", "prod",
             [("overlays/prod/patches/knative-mode.yaml", "scaleMetric: concurrency", "scaleMetric: cpu")],
             "scaleMetric cpu: the Knative KPA scales on concurrency or rps"),
    breakage("privilege_escalation_and_writable_root", "local-kind",
             [("base/redis.yaml",
               "            allowPrivilegeEscalation: false\n            readOnlyRootFilesystem: true\n", "")],
             ("Deployment/naviyam-redis", "allowPrivilegeEscalation must be false"),
             ("Deployment/naviyam-redis", "readOnlyRootFilesystem must be true")),
    breakage("gpu_without_node_selection", "prod",
             [("overlays/prod/patches/gpu-llm.yaml",
               "- op: add\n  path: /spec/predictor/tolerations\n  value:\n    - key: nvidia.com/gpu\n"
               "      operator: Exists\n      effect: NoSchedule\n",
               "")],
             ("InferenceService/naviyam-nlg/predictor", "requests nvidia.com/gpu")),
    breakage("pipeline_role_stays_least_privilege", "local-kind",
             [("base/rbac.yaml", 'verbs: ["patch"]', 'verbs: ["patch", "delete"]')],
             ("Role/naviyam-pipeline", "verbs beyond get/list/patch: ['delete']")),
    breakage("token_automount", "local-kind",
             [("base/feedback.yaml", "      automountServiceAccountToken: false\n", ""),
              ("base/serviceaccounts.yaml", "  name: naviyam-feedback\nautomountServiceAccountToken: false",
               "  name: naviyam-feedback")],
             ("Deployment/naviyam-feedback", "mounts a ServiceAccount token")),
    breakage("config_typo_is_caught", "local-kind",
             [("base/config/naviyam.yaml", "  service_urls:", "  service_url:")],
             ("ConfigMap/naviyam-config", "unknown setting serving.service_url"),
             "serving.service_urls has no naviyam-retriever"),
    breakage("service_url_must_be_in_cluster", "prod",
             [("base/config/naviyam.yaml", "http://naviyam-candidates-predictor.naviyam.svc.cluster.local",
               "http://127.0.0.1:9103")],
             "serving.service_urls.naviyam-candidates is http://127.0.0.1:9103"),
    breakage("default_deny_is_required", "local-kind",
             [("base/kustomization.yaml", "  - networkpolicies.yaml\n", "")],
             ("NetworkPolicy", "no default-deny ingress policy")),
    breakage("network_policies_let_the_router_through", "local-kind",
             [("base/networkpolicies.yaml", "values: [\"naviyam-nlu\", \"naviyam-nlg\"]",
               "values: [\"naviyam-nlu\"]")],
             "InferenceGraph/naviyam cannot reach InferenceService/naviyam-nlg/predictor"),
    breakage("only_feast_clients_reach_redis", "local-kind",
             [("base/networkpolicies.yaml",
               "  name: redis-from-feast-clients\nspec:\n  podSelector:\n"
               "    matchLabels:\n      app.kubernetes.io/name: naviyam-redis\n  policyTypes: [\"Ingress\"]\n"
               "  ingress:\n    - from:\n",
               "  name: redis-from-feast-clients\nspec:\n  podSelector:\n"
               "    matchLabels:\n      app.kubernetes.io/name: naviyam-redis\n  policyTypes: [\"Ingress\"]\n"
               "  ingress:\n    - from:\n        - podSelector: {}\n")],
             "InferenceService/naviyam-nlu/predictor can reach Deployment/naviyam-redis"),
    breakage("every_serving_workload_has_a_pdb", "local-kind",
             [("base/pdb.yaml", "      app.kubernetes.io/name: naviyam-redis",
               "      app.kubernetes.io/name: naviyam-redis-old")],
             ("Deployment/naviyam-redis", "no PodDisruptionBudget")),
    breakage("pdb_must_allow_an_eviction", "local-kind",
             [("base/pdb.yaml", "  name: naviyam-graph\nspec:\n  maxUnavailable: 1",
               "  name: naviyam-graph\nspec:\n  minAvailable: 1")],
             ("PodDisruptionBudget/naviyam-graph", "blocks every voluntary eviction")),
    breakage("latest_tag_is_refused", "prod",
             [("overlays/prod/kustomization.yaml", "naviyam-jobs, newTag: 0.1.0", "naviyam-jobs, newTag: latest")],
             ":latest is not a pinned tag"),
    breakage("job_code_must_import_real_names", "local-kind",
             [("base/jobs.yaml", "from naviyam.features import build_features",
               "from naviyam.features import build_feature", 2)],
             ("CronJob/naviyam-feature-materialize", "naviyam.features has no build_feature")),
    breakage("knative_refuses_a_volume_at_tmp", "prod",
             [("base/isvc-nlg.yaml", "{name: tmp, mountPath: /var/tmp}", "{name: tmp, mountPath: /tmp}")],
             ("InferenceService/naviyam-nlg/predictor", "volumeMount at /tmp: a path Knative reserves"),
             ("InferenceService/naviyam-nlg/predictor", "without an emptyDir at /var/tmp (the image's TMPDIR")),
    breakage("knative_refuses_a_writable_config_mount", "prod",
             [("base/isvc-nlu.yaml", "{name: config, mountPath: /etc/naviyam, readOnly: true}",
               "{name: config, mountPath: /etc/naviyam}")],
             ("naviyam-nlu/predictor", "Knative requires configMap/secret mounts to be readOnly")),
    breakage("job_module_must_be_runnable", "local-kind",
             [("base/jobs.yaml", "- naviyam.cli\n", "- naviyam.features\n")],
             ("Job/naviyam-build", "python -m naviyam.features", "no `if __name__")),
]


@pytest.mark.parametrize(("overlay", "edits", "errors"), BREAKAGES)
def test_breakage_fails_loudly_with_its_own_message(sandbox, overlay: str, edits: list[tuple],
                                                    errors: list[tuple[str, ...]]):
    for edit in edits:
        sandbox.edit(*edit)
    report = sandbox.validate([overlay])
    for needles in errors:
        assert_fails(report, *needles)


# -- breakages that take more than an edit -------------------------------------------------------

def test_legacy_raw_deployment_name_is_standard_mode_too(sandbox):
    sandbox.edit("overlays/local-kind/patches/standard-mode.yaml", "deploymentMode: Standard",
                 "deploymentMode: RawDeployment")
    sandbox.edit("overlays/local-kind/kustomization.yaml", "deploymentMode: Standard", "deploymentMode: RawDeployment")
    assert sandbox.validate(["local-kind"]).ok
    sandbox.edit("overlays/local-kind/kustomization.yaml", "        transformer:\n          minReplicas: 1",
                 "        transformer:\n          canaryTrafficPercent: 20\n          minReplicas: 1")
    assert_fails(sandbox.validate(["local-kind"]), "naviyam-ranker/transformer", "ignored in Standard")


def test_component_without_an_image(sandbox):
    (sandbox.docker / "naviyam-nlg.Dockerfile").unlink()
    report = sandbox.validate(["local-kind"])
    assert_fails(report, "component naviyam-nlg: no image (dockerfiles/naviyam-nlg.Dockerfile)")
    assert_fails(report, "InferenceService/naviyam-nlg/predictor", "no Dockerfile")


def test_crd_check_is_skipped_with_a_reason_when_the_crds_are_absent(sandbox, tmp_path: Path):
    sandbox.edit("base/isvc-nlu.yaml", "    automountServiceAccountToken: false",
                 "    automountServiceAccountToken: false\n    minReplica: 2")
    add_resource(sandbox, MONITORING.replace("interval: 30s", "intervall: 30s"))
    report = sandbox.validate(["prod"], crds=tmp_path / "no-crds")
    assert report.ok, "\n".join(report.errors)  # nothing else catches an unknown field of a custom resource
    skip = [n for n in report.notes if "SKIP CRD schema check" in n and "no-crds" in n]
    assert skip, report.notes
    for what in ("serving.kserve.io/v1beta1 InferenceService", "serving.kserve.io/v1alpha1 InferenceGraph",
                 "monitoring.coreos.com/v1 ServiceMonitor", "monitoring.coreos.com/v1 PrometheusRule"):
        assert what in skip[0]


# A custom resource of each Prometheus Operator CRD in ../shared/crds, valid as written.
MONITORING = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: naviyam-probe-feedback
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: naviyam-feedback
  endpoints:
    - port: http
      path: /metrics
      interval: 30s
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: naviyam-probe-model-servers
spec:
  selector:
    matchExpressions:
      - {key: serving.kserve.io/inferenceservice, operator: Exists}
  podMetricsEndpoints:
    - port: http1
      path: /metrics
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: naviyam-probe-rules
spec:
  groups:
    - name: naviyam-probe
      rules:
        - alert: NaviyamProbeDown
          expr: up{job="naviyam-feedback"} == 0
          for: 5m
          labels:
            severity: page
"""


def add_resource(sandbox, text: str, name: str = "zz-crd-probe.yaml") -> None:
    (sandbox.manifests / "base" / name).write_text(text)
    sandbox.edit("base/kustomization.yaml", "resources:\n", f"resources:\n  - {name}\n")


@needs_crds
def test_prometheus_operator_resources_are_validated_against_their_crds(sandbox):
    add_resource(sandbox, MONITORING)
    report = sandbox.validate(["local-kind"])
    assert report.ok, "\n".join(report.errors)
    broken = (MONITORING.replace("      interval: 30s", "      intervall: 30s")
              .replace("  podMetricsEndpoints:", "  podMetricEndpoints:")
              .replace("for: 5m", "for: five minutes"))
    sandbox.path("base/zz-crd-probe.yaml").write_text(broken)
    report = sandbox.validate(["local-kind"])
    assert_fails(report, "ServiceMonitor/naviyam-probe-feedback", "CRD schema", "spec.endpoints.0",
                 "unknown field", "intervall")
    assert_fails(report, "PodMonitor/naviyam-probe-model-servers", "CRD schema", "unknown field", "podMetricEndpoints")
    assert_fails(report, "PrometheusRule/naviyam-probe-rules", "CRD schema", "spec.groups.0.rules.0.for")


@needs_crds
def test_custom_resource_without_a_crd_is_refused(sandbox):
    add_resource(sandbox, "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: naviyam-widget\n")
    assert_fails(sandbox.validate(["local-kind"]), "Widget/naviyam-widget", "no schema for example.com/v1 Widget")


def test_model_servers_get_no_api_permissions(sandbox):
    sandbox.append("base/rbac.yaml", "  - kind: ServiceAccount\n    name: naviyam-model-server\n    namespace: naviyam\n")
    report = sandbox.validate(["local-kind"])
    assert_fails(report, "ServiceAccount/naviyam-model-server", "is bound to a Role")
    assert_fails(report, "InferenceService/naviyam-nlu/predictor", "holds API permissions")


def test_no_inline_secrets(sandbox):
    sandbox.append("base/redis.yaml", "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: naviyam-redis\n"
                                      "stringData:\n  password: hunter2\n")
    assert_fails(sandbox.validate(["local-kind"]), "Secret/naviyam-redis", "create it out of band")


def test_network_policies_keep_model_servers_private(sandbox):
    # Widen the fan-out policy to "any pod of any namespace".
    sandbox.edit("base/networkpolicies.yaml",
                 "  name: fanout-from-ranker-transformer\n", "  name: fanout-from-ranker-transformer\n", 1)
    text = sandbox.path("base/networkpolicies.yaml").read_text()
    head, _, tail = text.partition("  name: fanout-from-ranker-transformer\n")
    tail = tail.replace("        - podSelector:\n            matchLabels:\n"
                        "              serving.kserve.io/inferenceservice: naviyam-ranker\n"
                        "              component: transformer\n", "        - namespaceSelector: {}\n", 1)
    sandbox.path("base/networkpolicies.yaml").write_text(head + "  name: fanout-from-ranker-transformer\n" + tail)
    report = sandbox.validate(["local-kind"])
    assert_fails(report, "NetworkPolicy", "naviyam-app can reach InferenceService/naviyam-retriever/predictor")


def test_unused_dockerfile(sandbox):
    text = (sandbox.docker / "naviyam-jobs.Dockerfile").read_text()
    (sandbox.docker / "naviyam-tools.Dockerfile").write_text(text)
    assert_fails(sandbox.validate(["local-kind"]), "dockerfiles/naviyam-tools.Dockerfile", "not used by any object")


def test_dockerfile_rules(sandbox):
    path = sandbox.docker / "naviyam-feedback.Dockerfile"
    path.write_text(path.read_text().replace("USER 10001:10001", "USER root").replace(
        'ENTRYPOINT ["python", "-m", "components.feedback"]', 'ENTRYPOINT ["python", "-m", "components.server"]'))
    report = sandbox.validate(["local-kind"])
    assert_fails(report, "dockerfiles/naviyam-feedback.Dockerfile", "non-root USER")
    assert_fails(report, "dockerfiles/naviyam-feedback.Dockerfile", 'ENTRYPOINT must be ["python", "-m", "components.feedback"]')


def test_runnable_component_module_needs_a_manifest(tmp_path: Path):
    """A new runnable module in components/ without a manifest (nor a dev-only declaration) fails."""
    fake = tmp_path / "repo"
    (fake / "components").mkdir(parents=True)
    for name in ("server.py", "ranker_transformer.py", "feedback.py"):
        (fake / "components" / name).write_text((ROOT / "components" / name).read_text())
    (fake / "components" / "reranker.py").write_text("def main():\n    pass\n\nif __name__ == '__main__':\n    main()\n")
    repo = vm.Repo.load(fake, manifests=ROOT / "manifests", docker=ROOT / "dockerfiles", crds=CRDS,
                        graph_file=ROOT / "inference_graph" / "naviyam.yaml")
    ctx = vm.Context("x", [], repo)
    vm.check_coverage(ctx, {})
    assert any("components/reranker.py: is runnable but neither deployed" in e for e in ctx.errors), ctx.errors


@needs_crds
def test_every_crd_in_shared_crds_is_loaded():
    validators = vm.load_crd_validators(str(CRDS))
    expected = set()
    for path in CRDS.glob("*.yaml"):
        # libyaml's loader, like the validator's own: the pure-Python one takes seconds on CRDs.
        for crd in yaml.load_all(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if crd and crd.get("kind") == "CustomResourceDefinition":
                expected |= {(f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"])
                             for v in crd["spec"]["versions"] if v.get("served", True)}
    assert expected <= set(validators)
    # The kinds manifests/ uses or may use: KServe's and the Prometheus Operator's.
    assert {("serving.kserve.io/v1beta1", "InferenceService"), ("serving.kserve.io/v1alpha1", "InferenceGraph"),
            ("serving.kserve.io/v1alpha1", "ServingRuntime"), ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"),
            ("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
            ("monitoring.coreos.com/v1", "PrometheusRule")} <= set(validators)


@pytest.mark.usefixtures("kubectl")
def test_knative_feature_flags_are_reported():
    report = vm.validate(vm.Repo.load(ROOT), ["prod"])
    flags = " ".join(n for n in report.notes if "Knative feature flag" in n)
    for flag in ("persistent-volume-claim", "nodeselector", "tolerations"):
        assert f"kubernetes.podspec-{flag}" in flags
    # No model server writes a volume (state is in PostgreSQL): Knative's write flag is not needed.
    assert "kubernetes.podspec-persistent-volume-write" not in flags

