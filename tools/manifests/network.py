"""NetworkPolicy simulation: who may reach the router, feedback, the model servers, Redis and PostgreSQL."""
from __future__ import annotations

from dataclasses import dataclass

from tools.manifests.context import Context, Workload, containers, image_basename, match_selector, workloads
from tools.manifests.images import MODEL_SERVER_PORT
from tools.manifests.state import STATE_SECRET, holds_state_secret

APP_NAMESPACE = "naviyam-app"  # the chatbot app's namespace: may reach the graph router and feedback only
KFP_POD_LABELS = {"pipelines.kubeflow.org/v2_component": "true"}  # Kubeflow Pipelines v2 labels every pod of a run


@dataclass
class Peer:
    label: str
    namespace: str
    ns_labels: dict[str, str]
    labels: dict[str, str]


def allowed(ctx: Context, source: Peer, target: Workload, port: int | None) -> bool:
    policies = [p for p in ctx.of_kind("NetworkPolicy")
                if match_selector(p["spec"].get("podSelector"), target.labels)
                and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])]
    if not policies:
        return True
    for p in policies:
        for rule in p["spec"].get("ingress") or []:
            ports = rule.get("ports") or []
            if ports and port is not None and not any(pp.get("port") in (port, None) for pp in ports):
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "ipBlock" in peer:
                    continue
                ns_ok = (match_selector(peer["namespaceSelector"], source.ns_labels) if "namespaceSelector" in peer
                         else source.namespace == ctx.namespace)
                pod_ok = match_selector(peer.get("podSelector"), source.labels) if "podSelector" in peer else True
                if ns_ok and pod_ok:
                    return True
    return False


def check_network(ctx: Context) -> None:
    # Allow-lists (the monitoring scrape policies, say) isolate only the pods they select.
    if not any(p["spec"].get("podSelector") in ({}, None) and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])
               and not p["spec"].get("ingress") for p in ctx.of_kind("NetworkPolicy")):
        ctx.error("NetworkPolicy", "no default-deny ingress policy (podSelector: {}, no ingress rules): every pod "
                                   "that no policy selects accepts traffic from anywhere")
        return
    wls = list(workloads(ctx.docs))
    ns_labels = {"kubernetes.io/metadata.name": ctx.namespace or ""}

    def peer(wl: Workload) -> Peer:
        return Peer(wl.ref, ctx.namespace or "", ns_labels, wl.labels)

    def port_of(wl: Workload) -> int | None:
        for _, c in containers(wl.pod or {}):
            for p in c.get("ports") or []:
                return p.get("containerPort")
        return MODEL_SERVER_PORT if wl.kind in ("InferenceService", "InferenceGraph") else None

    app = Peer(f"a pod in namespace {APP_NAMESPACE}", APP_NAMESPACE,
               {"kubernetes.io/metadata.name": APP_NAMESPACE}, {"app": "naviyam-app"})
    isvcs = ctx.isvcs()

    def entry(name: str) -> Workload | None:
        comp = "transformer" if name in isvcs and "transformer" in isvcs[name]["spec"] else "predictor"
        return next((w for w in wls if w.kind == "InferenceService" and w.name == name and w.isvc_component == comp), None)

    routers = [w for w in wls if w.kind == "InferenceGraph"]
    feedback = [w for w in wls if any(c.get("image", "").rsplit("/", 1)[-1].startswith("naviyam-feedback")
                                      for _, c in containers(w.pod or {}))]
    redis = [w for w in wls if any(image_basename(c.get("image", "")) == "redis" for _, c in containers(w.pod or {}))]
    transformer = entry("naviyam-ranker")
    ranker_predictor = next((w for w in wls if w.name == "naviyam-ranker" and w.isvc_component == "predictor"), None)

    def must(src: Peer, dst: Workload | None, why: str) -> None:
        if dst is not None and not allowed(ctx, src, dst, port_of(dst)):
            ctx.error("NetworkPolicy", f"{src.label} cannot reach {dst.ref} ({why})")

    def must_not(src: Peer, dst: Workload, why: str) -> None:
        if allowed(ctx, src, dst, port_of(dst)):
            ctx.error("NetworkPolicy", f"{src.label} can reach {dst.ref}: {why}")

    for r in routers:
        must(app, r, "the app calls the graph")
    for f in feedback:
        must(app, f, "the app posts feedback")
    for wl in wls:
        if wl.kind == "InferenceService":
            must_not(app, wl, f"only the router is reachable from {APP_NAMESPACE}")
    for graph in ctx.of_kind("InferenceGraph"):
        router = next(w for w in routers if w.name == graph["metadata"]["name"])
        for node in (graph["spec"].get("nodes") or {}).values():
            for step in node.get("steps") or []:
                if step.get("serviceName") in isvcs:
                    must(peer(router), entry(step["serviceName"]), f"graph step {step.get('name')}")
    if transformer is not None:
        for name in ctx.repo.fanout:
            must(peer(transformer), entry(name), "ranker fan-out")
        must(peer(transformer), ranker_predictor, "the transformer calls its predictor")
    postgres = [w for w in wls if w.long_running
                and any(image_basename(c.get("image", "")) == "postgres" for _, c in containers(w.pod or {}))]
    pipeline_pod = Peer("a Kubeflow pipeline task pod", ctx.namespace or "", ns_labels, dict(KFP_POD_LABELS))
    stranger = Peer("an unlabelled pod of the namespace", ctx.namespace or "", ns_labels, {})
    for pg in postgres:
        must_not(app, pg, "the state database is internal")
        must_not(stranger, pg, "only state clients reach the state database")
        must(pipeline_pod, pg, "the learning loop's tasks read and write state")
        for wl in wls:
            if wl is pg:
                continue
            if holds_state_secret(wl):
                must(peer(wl), pg, f"it holds Secret {STATE_SECRET}")
            else:
                must_not(peer(wl), pg, f"it keeps no state (no Secret {STATE_SECRET})")
    for r in redis:
        must_not(app, r, "Redis is internal")
        for wl in wls:
            if wl is r or wl.pod is None:
                continue
            uses = any(e.get("name") == "REDIS_CONNECTION_STRING" for _, c in containers(wl.pod) for e in c.get("env") or [])
            if uses:
                must(peer(wl), r, "it reads/writes the Feast online store")
            else:
                must_not(peer(wl), r, "it does not use the Feast online store")
