"""KServe and Knative: the InferenceGraph (and its generated copy in manifests/base), the deployment
mode, canaries and autoscaling, and what Knative Serving's admission webhook would refuse.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from tools.manifests.context import Context, containers, ref, workloads
from tools.manifests.repo import Repo

# The learning loop canaries and rolls back these two (pipelines/README.md).
CANARY_SERVICES = ("naviyam-ranker", "naviyam-nlg")
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS_ANNOTATION = "serving.kserve.io/autoscalerClass"
KNATIVE_CLASS_ANNOTATION = "autoscaling.knative.dev/class"
MODES = {"Knative": "Knative", "Serverless": "Knative", "Standard": "Standard", "RawDeployment": "Standard"}


def check_graph(ctx: Context) -> None:
    graphs = ctx.of_kind("InferenceGraph")
    source = yaml.safe_load(ctx.repo.graph_file.read_text(encoding="utf-8"))
    name = source["metadata"]["name"]
    mine = [g for g in graphs if g["metadata"]["name"] == name]
    if not mine:
        ctx.error("InferenceGraph", f"the build has no InferenceGraph {name} (inference_graph/naviyam.yaml)")
        return
    graph = mine[0]
    for key in ("nodes", "timeout"):
        if graph["spec"].get(key) != source["spec"].get(key):
            ctx.error(ref(graph), f"spec.{key} differs from inference_graph/naviyam.yaml: run "
                                  "`python -m tools.validate_manifests --sync-graph`")
    isvcs = ctx.isvcs()
    nodes = graph["spec"].get("nodes") or {}
    if "root" not in nodes:
        ctx.error(ref(graph), "no root node")
    referenced = set()
    for node_name, node in nodes.items():
        for i, step in enumerate(node.get("steps") or []):
            where = f"{ref(graph)} nodes.{node_name}.steps[{i}] ({step.get('name')})"
            targets = [k for k in ("serviceName", "serviceUrl", "nodeName") if step.get(k)]
            if len(targets) != 1:
                ctx.error(where, "a step targets exactly one of serviceName/serviceUrl/nodeName")
            if step.get("serviceName"):
                referenced.add(step["serviceName"])
                if step["serviceName"] not in isvcs:
                    ctx.error(where, f"serviceName {step['serviceName']} is not an InferenceService of the build "
                                     f"({', '.join(sorted(isvcs))})")
            if step.get("nodeName") and step["nodeName"] not in nodes:
                ctx.error(where, f"nodeName {step['nodeName']} is not a node of the graph")
    fanout = set(ctx.repo.fanout)
    for isvc in sorted(set(isvcs) - referenced - fanout):
        ctx.error(f"InferenceService/{isvc}", "is neither a step of the InferenceGraph nor a fan-out target of "
                                              "the ranker transformer: nothing calls it")
    serving = (ctx.settings or {}).get("serving") or {}
    if "graph_timeout_s" in serving and graph["spec"].get("timeout") is not None \
            and float(serving["graph_timeout_s"]) != float(graph["spec"]["timeout"]):
        ctx.error(ref(graph), f"spec.timeout {graph['spec']['timeout']} differs from serving.graph_timeout_s "
                              f"{serving['graph_timeout_s']}")


def check_mode_canary_autoscaling(ctx: Context) -> None:
    modes = {}
    for obj in ctx.of_kind("InferenceService", "InferenceGraph"):
        raw = ((obj["metadata"].get("annotations") or {}).get(DEPLOYMENT_MODE_ANNOTATION))
        if raw is None:
            ctx.error(ref(obj), f"no {DEPLOYMENT_MODE_ANNOTATION} annotation: state the mode explicitly "
                                "(KServe's default changed from Serverless to Standard)")
            continue
        if raw not in MODES:
            ctx.error(ref(obj), f"{DEPLOYMENT_MODE_ANNOTATION}: {raw!r} is not one of {', '.join(MODES)}")
            continue
        modes[ref(obj)] = MODES[raw]
    distinct = set(modes.values())
    if len(distinct) > 1:
        ctx.error("deployment mode", f"mixed modes: {modes}")
    ctx.mode = next(iter(distinct)) if len(distinct) == 1 else None

    for name, isvc in ctx.isvcs().items():
        mode = modes.get(f"InferenceService/{name}")
        spec = isvc["spec"]
        annotations = isvc["metadata"].get("annotations") or {}
        canaried = [c for c in ("predictor", "transformer", "explainer")
                    if c in spec and "canaryTrafficPercent" in spec[c]]
        for comp in canaried:
            pct = spec[comp]["canaryTrafficPercent"]
            where = f"InferenceService/{name}/{comp}"
            if mode == "Standard":
                ctx.error(where, "canaryTrafficPercent is ignored in Standard (RawDeployment) mode: KServe rolls "
                                 "out 100% at once. Use Knative mode, or spec.canary (KServe >= 0.20, Gateway API)")
            if not isinstance(pct, int) or not 0 <= pct <= 100:
                ctx.error(where, f"canaryTrafficPercent {pct!r} is not an integer in 0..100")
        if mode == "Knative" and name in CANARY_SERVICES:
            for comp in ("predictor", "transformer"):
                if comp in spec and comp not in canaried:
                    ctx.error(f"InferenceService/{name}/{comp}", "the learning loop canaries this service: set "
                                                                 "canaryTrafficPercent in Knative mode")
        if canaried and name not in CANARY_SERVICES:
            ctx.error(f"InferenceService/{name}", f"canary on a service the learning loop does not roll out "
                                                  f"(and naviyam-pipeline may not patch): {', '.join(CANARY_SERVICES)}")
        if spec.get("canary"):
            if mode != "Standard":
                ctx.error(f"InferenceService/{name}", "spec.canary is KServe's Standard-mode canary; in Knative "
                                                      "mode use canaryTrafficPercent")
            names = [((c.get("predictor") or {}).get("name")) for c in spec["canary"]]
            if None in names or len(set(names)) != len(names):
                ctx.error(f"InferenceService/{name}", "spec.canary entries need unique predictor.name values")
            if sum(int(c.get("trafficPercent", 0)) for c in spec["canary"]) > 100:
                ctx.error(f"InferenceService/{name}", "spec.canary trafficPercent values add up to more than 100")

        for comp in ("predictor", "transformer"):
            if comp not in spec:
                continue
            c = spec[comp]
            where = f"InferenceService/{name}/{comp}"
            metric = c.get("scaleMetric")
            lo, hi = c.get("minReplicas"), c.get("maxReplicas")
            if lo is not None and hi is not None and hi and lo > hi:
                ctx.error(where, f"minReplicas {lo} > maxReplicas {hi}")
            if mode == "Knative":
                klass = annotations.get(KNATIVE_CLASS_ANNOTATION, "kpa.autoscaling.knative.dev")
                if klass.startswith("kpa") and metric not in (None, "concurrency", "rps"):
                    ctx.error(where, f"scaleMetric {metric}: the Knative KPA scales on concurrency or rps "
                                     "(cpu/memory need autoscaling.knative.dev/class: hpa.autoscaling.knative.dev)")
                if lo == 0:
                    ctx.note(f"{where}: minReplicas 0 (scale to zero): the first chat turn pays a cold start")
                if AUTOSCALER_CLASS_ANNOTATION in annotations:
                    ctx.error(where, f"{AUTOSCALER_CLASS_ANNOTATION} is a Standard-mode annotation")
            elif mode == "Standard":
                klass = annotations.get(AUTOSCALER_CLASS_ANNOTATION)
                if klass is None:
                    ctx.error(where, f"Standard mode: state {AUTOSCALER_CLASS_ANNOTATION} (hpa, keda, external or "
                                     "none)")
                elif klass not in ("hpa", "keda", "external", "none"):
                    ctx.error(where, f"{AUTOSCALER_CLASS_ANNOTATION}: {klass!r} is not hpa, keda, external or none")
                elif klass == "hpa" and metric not in (None, "cpu", "memory"):
                    ctx.error(where, f"scaleMetric {metric}: a Standard-mode HPA scales on cpu or memory")
                elif klass == "none" and hi not in (None, lo):
                    ctx.error(where, "autoscalerClass none with maxReplicas > minReplicas: nothing would scale")
                if KNATIVE_CLASS_ANNOTATION in annotations:
                    ctx.error(where, f"{KNATIVE_CLASS_ANNOTATION} has no effect in Standard mode")


KNATIVE_RESERVED_PATHS = {"/", "/dev", "/dev/log", "/tmp", "/var", "/var/log"}
KNATIVE_RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
KNATIVE_RESERVED_PORTS = {8008, 8012, 8013, 8022, 9090, 9091}
KNATIVE_CONTAINER_SECURITY = {"capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "runAsNonRoot",
                              "allowPrivilegeEscalation", "seccompProfile"}


def check_knative(ctx: Context) -> None:
    """What Knative Serving's admission webhook would refuse, and the feature flags the build needs."""
    if ctx.mode != "Knative":
        return
    flags: dict[str, set[str]] = {}
    for wl in workloads(ctx.docs):
        if wl.kind != "InferenceService" or wl.pod is None:
            continue
        pod = wl.pod
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for key, flag in (("nodeSelector", "kubernetes.podspec-nodeselector"),
                          ("tolerations", "kubernetes.podspec-tolerations"),
                          ("affinity", "kubernetes.podspec-affinity"),
                          ("securityContext", "kubernetes.podspec-securitycontext")):
            if pod.get(key):
                flags.setdefault(flag, set()).add(wl.ref)
        if pod.get("automountServiceAccountToken") is True:
            ctx.error(wl.ref, "Knative only accepts automountServiceAccountToken: false")
        for v in volumes.values():
            if "persistentVolumeClaim" in v:
                flags.setdefault("kubernetes.podspec-persistent-volume-claim", set()).add(wl.ref)
        for where, c in containers(pod):
            loc = f"{wl.ref} {where} ({c.get('name')})"
            if where.startswith("initContainers"):
                flags.setdefault("kubernetes.podspec-init-containers", set()).add(wl.ref)
            for m in c.get("volumeMounts") or []:
                path = os.path.normpath(m.get("mountPath", ""))
                if path in KNATIVE_RESERVED_PATHS:
                    ctx.error(loc, f"volumeMount at {path}: a path Knative reserves (its webhook refuses it)")
                v = volumes.get(m.get("name")) or {}
                if any(k in v for k in ("configMap", "secret", "projected")) and m.get("readOnly") is not True:
                    ctx.error(loc, f"volumeMount {m.get('name')}: Knative requires configMap/secret mounts to be readOnly")
                if "persistentVolumeClaim" in v and not m.get("readOnly"):
                    flags.setdefault("kubernetes.podspec-persistent-volume-write", set()).add(wl.ref)
            for e in c.get("env") or []:
                if e.get("name") in KNATIVE_RESERVED_ENV:
                    ctx.error(loc, f"env {e['name']} is reserved by Knative")
            for p in c.get("ports") or []:
                if p.get("containerPort") in KNATIVE_RESERVED_PORTS:
                    ctx.error(loc, f"port {p['containerPort']} is reserved by Knative's queue-proxy")
            extra = set(c.get("securityContext") or {}) - KNATIVE_CONTAINER_SECURITY
            if extra:
                ctx.error(loc, f"container securityContext field(s) {sorted(extra)} are refused by Knative")
    for flag in sorted(flags):
        ctx.note(f"Knative feature flag {flag}: enabled needed (config-features) for {len(flags[flag])} component(s)")


# -- the generated copy of the graph ----------------------------------------------------------------

GRAPH_COPY = Path("base") / "inference-graph.yaml"
GRAPH_HEADER = ("# GENERATED from inference_graph/naviyam.yaml by `python -m tools.validate_manifests --sync-graph`.\n"
                "# Do not edit: change the source and re-sync (the validator fails when the two differ). A copy\n"
                "# because kustomize refuses files outside the kustomization root.\n")


def graph_copy_text(repo: Repo) -> str:
    return GRAPH_HEADER + repo.graph_file.read_text(encoding="utf-8")


def check_graph_copy(repo: Repo) -> list[str]:
    path = repo.manifests / GRAPH_COPY
    if not path.is_file():
        return [f"manifests/{GRAPH_COPY}: missing; run `python -m tools.validate_manifests --sync-graph`"]
    if path.read_text(encoding="utf-8") != graph_copy_text(repo):
        return [f"manifests/{GRAPH_COPY} differs from inference_graph/naviyam.yaml; run "
                "`python -m tools.validate_manifests --sync-graph`"]
    return []
