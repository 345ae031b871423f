"""Overlay-wide structure: one namespace, DNS-1035 names for KServe objects, PodDisruptionBudgets, CronJobs."""
from __future__ import annotations

import re

from tools.manifests.context import Context, match_selector, ref, workloads

KSERVE_KINDS = ("InferenceService", "InferenceGraph", "ServingRuntime", "ClusterServingRuntime")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass", "ClusterServingRuntime"}
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def check_structure(ctx: Context) -> None:
    namespaces = set()
    for obj in ctx.docs:
        if obj["kind"] not in CLUSTER_SCOPED:
            ns = obj["metadata"].get("namespace")
            if not ns:
                ctx.error(ref(obj), "no namespace (the overlay must set `namespace:`)")
            else:
                namespaces.add(ns)
        if obj["kind"] in KSERVE_KINDS and not DNS1035.match(obj["metadata"]["name"]):
            ctx.error(ref(obj), "name must be a DNS-1035 label (KServe derives Service names from it)")
    if len(namespaces) > 1:
        ctx.error("namespace", f"objects are spread over several namespaces: {', '.join(sorted(namespaces))}")
    ctx.namespace = next(iter(namespaces)) if len(namespaces) == 1 else None
    declared = [d["metadata"]["name"] for d in ctx.of_kind("Namespace")]
    if ctx.namespace and declared and ctx.namespace not in declared:
        ctx.error("namespace", f"Namespace object(s) {declared} do not match the objects' namespace {ctx.namespace}")


def check_pdbs(ctx: Context) -> None:
    pdbs = ctx.of_kind("PodDisruptionBudget")
    for wl in workloads(ctx.docs):
        if not wl.long_running:
            continue
        covering = [p for p in pdbs if match_selector(p["spec"].get("selector"), wl.labels)
                    and p["spec"].get("selector")]
        if not covering:
            ctx.error(wl.ref, "no PodDisruptionBudget selects its pods")
            continue
        if len(covering) > 1:
            ctx.error(wl.ref, f"several PodDisruptionBudgets select its pods ({[ref(p) for p in covering]}): "
                              "the eviction API refuses to evict such pods")
        spec = covering[0]["spec"]
        max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
        blocks = (max_unavailable in (0, "0%")) or (
            isinstance(min_available, int) and min_available >= wl.min_replicas) or min_available == "100%"
        if blocks:
            ctx.error(ref(covering[0]), f"blocks every voluntary eviction of {wl.ref} "
                                        f"(min replicas {wl.min_replicas}): node drains would hang")


def check_jobs(ctx: Context) -> None:
    for cj in ctx.of_kind("CronJob"):
        if len(str(cj["spec"].get("schedule", "")).split()) != 5:
            ctx.error(ref(cj), f"schedule {cj['spec'].get('schedule')!r} is not a 5-field cron expression")
        if cj["spec"].get("concurrencyPolicy") != "Forbid":
            ctx.error(ref(cj), "concurrencyPolicy must be Forbid (two materialisations would race on the registry)")
