"""Offline validation of manifests/ (no API server, no container engine): `python -m tools.validate_manifests`.

For each overlay (default: every directory under manifests/overlays/) it
1. builds the overlay with `kubectl kustomize` (the venv's kubectl, which tools.install_kubectl puts
   there, else the first on PATH);
2. validates every built-in object with kubernetes-validate (strict, Kubernetes K8S_VERSION) and every
   custom resource against the openAPIV3Schema of its CRD in ../shared/crds (KServe's, the Prometheus
   Operator's: whatever CRD files are there), unknown fields rejected as `kubectl apply --validate=strict`
   would; without that directory the CRD check is skipped and says what it skipped;
3. cross-checks the build against the repository (see CHECKS below and manifests/README.md).

Exit status 0 when every overlay passes, 1 with one readable line per problem otherwise.
`--sync-graph` rewrites manifests/base/inference-graph.yaml from inference_graph/naviyam.yaml
(kustomize cannot load a file outside the kustomization root, so the base keeps a generated copy,
and this validator fails when the copy and the source differ).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tools.manifests.kserve import CANARY_SERVICES, GRAPH_COPY, graph_copy_text
from tools.manifests.repo import REPO_ROOT, Repo
from tools.manifests.report import validate
from tools.manifests.schemas import K8S_VERSION

CHECKS = """\
build        the overlay builds with kubectl kustomize
schema       built-in kinds: kubernetes-validate --strict for Kubernetes {k8s}; custom resources: their CRD's
             openAPIV3Schema from ../shared/crds, unknown fields rejected (skipped, with a note, when absent)
namespace    every namespaced object in one namespace; RoleBinding subjects in it
images       naviyam images have dockerfiles/<image>.Dockerfile; every image has a tag or digest, never :latest;
             third-party images are allow-listed; every Dockerfile is used
commands     every container's command (Dockerfile ENTRYPOINT/CMD + args) runs a real module: components.server
             with --component/--model_name in COMPONENTS and --model_name = the InferenceService name,
             components.feedback, or `python -m/-c` code whose imports and keywords exist
components   every COMPONENTS entry and the feedback service has exactly one manifest and an image
             (dockerfiles/<component>.Dockerfile whose ENTRYPOINT/CMD run it); every runnable module in
             components/ is deployed or declared dev-only
ports        model servers listen on 8080 (container port, --http_port, probes); feedback's --port =
             containerPort = serving.ports; Service targetPorts exist on the selected pods
probes       readiness /v2/models/<isvc>/ready, liveness /v2/health/live (model servers); /healthz (feedback)
graph        the InferenceGraph equals inference_graph/naviyam.yaml (nodes, timeout); every serviceName is an
             InferenceService of the build; every InferenceService is a graph step or a fan-out target
mode         every InferenceService and the graph state serving.kserve.io/deploymentMode, all the same
canary       canaryTrafficPercent only in Knative mode, on {canary}; spec.canary only in Standard mode
autoscaling  Knative: KPA metrics (concurrency/rps); Standard: autoscalerClass + HPA metrics (cpu/memory)
security     non-root, no privilege escalation, drop ALL, RuntimeDefault seccomp, read-only root fs with a /tmp
             emptyDir, requests+limits, no token automount, no host namespaces or hostPath, GPU pods tolerate
             and select GPU nodes
rbac         no cluster-wide roles, no wildcards; only naviyam-pipeline is bound, to get/list/patch
             InferenceServices; workloads use existing ServiceAccounts that are bound to nothing
secrets      no Secret objects in the build (referenced via secretKeyRef, created out of band)
config       naviyam-config/config.yaml has only known Settings keys; serving.host binds all interfaces;
             service_urls point at in-cluster InferenceService URLs (fan-out targets included); timeouts agree;
             NAVIYAM_* env vars are known
state        every process that keeps state (nlu, nlg, the ranker's two components, feedback, `naviyam.cli`)
             has NAVIYAM_STATE__DSN from secretKeyRef naviyam-postgres/dsn (required, never composed in env);
             no PostgreSQL password or DSN in plain env or in the ConfigMap; no serving pod mounts a volume
             writable (state lives in PostgreSQL, the jobs write the home volumes)
network      a default-deny ingress policy; simulated NetworkPolicies: the app namespace reaches only the router
             and feedback; router -> graph steps; ranker transformer -> fan-out, its predictor and Redis;
             nothing else reaches Redis; PostgreSQL only from the pods that hold its Secret and from
             Kubeflow pipeline pods
pdb          every serving workload has one PodDisruptionBudget that still allows an eviction
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.validate_manifests", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="checks:\n" + CHECKS.format(k8s=K8S_VERSION, canary=", ".join(CANARY_SERVICES)))
    parser.add_argument("--overlay", action="append", help="overlay name under manifests/overlays (repeatable; default all)")
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--manifests", type=Path, help="manifests directory (default: REPO/manifests)")
    parser.add_argument("--docker", type=Path, help="Dockerfile directory (default: REPO/dockerfiles)")
    parser.add_argument("--crds", type=Path, help="CRD directory (default: REPO/../shared/crds)")
    parser.add_argument("--kubectl", help="kubectl to build with (default: the venv's, else the first on PATH)")
    parser.add_argument("--k8s-version", default=K8S_VERSION)
    parser.add_argument("--sync-graph", action="store_true",
                        help="rewrite manifests/base/inference-graph.yaml from inference_graph/naviyam.yaml and exit")
    parser.add_argument("--quiet", action="store_true", help="print errors and skipped checks only")
    args = parser.parse_args(argv)
    repo = Repo.load(args.repo, args.manifests, args.docker, args.crds)
    if args.sync_graph:
        target = repo.manifests / GRAPH_COPY
        target.write_text(graph_copy_text(repo), encoding="utf-8")
        print(f"wrote {target}")
        return 0
    report = validate(repo, args.overlay, args.kubectl, args.k8s_version)
    skipped = [note for note in report.notes if "SKIP " in note]
    for note in skipped if args.quiet else report.notes:
        print(f"note  {note}")
    for error in report.errors:
        print(f"ERROR {error}")
    if report.ok:
        print(f"OK: {', '.join(args.overlay or ['all overlays'])} pass every check"
              + (f" but the {len(skipped)} skipped above" if skipped else ""))
        return 0
    print(f"FAILED: {len(report.errors)} problem(s)")
    return 1
