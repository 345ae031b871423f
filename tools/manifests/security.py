"""Pod hardening (non-root, read-only root fs, resources, probes, GPU placement), RBAC and Secrets."""
from __future__ import annotations

import re
from typing import Any

from tools.manifests.context import Context, containers, image_basename, ref, workloads


def effective(pod: dict, c: dict, key: str) -> Any:
    value = (c.get("securityContext") or {}).get(key)
    return value if value is not None else (pod.get("securityContext") or {}).get(key)


def check_security(ctx: Context) -> None:
    service_accounts = {d["metadata"]["name"]: d for d in ctx.of_kind("ServiceAccount")}
    for wl in workloads(ctx.docs):
        pod = wl.pod
        if pod is None:
            continue
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(key):
                ctx.error(wl.ref, f"{key}: true")
        for v in pod.get("volumes") or []:
            if "hostPath" in v:
                ctx.error(wl.ref, f"volume {v.get('name')} is a hostPath")
        sa = pod.get("serviceAccountName") or pod.get("serviceAccount")
        if not sa or sa == "default":
            ctx.error(wl.ref, "runs as the default ServiceAccount: name a dedicated one")
        elif sa not in service_accounts:
            ctx.error(wl.ref, f"ServiceAccount {sa} is not in the build")
        automount = pod.get("automountServiceAccountToken")
        if automount is None:
            automount = (service_accounts.get(sa) or {}).get("automountServiceAccountToken", True)
        if automount is not False:
            ctx.error(wl.ref, "mounts a ServiceAccount token: set automountServiceAccountToken: false")
        pod_sc = pod.get("securityContext") or {}
        if wl.kind == "InferenceService" and ctx.mode == "Knative":
            extra = set(pod_sc) - {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups",
                                   "seccompProfile"}
            if extra:
                ctx.error(wl.ref, f"pod securityContext field(s) {sorted(extra)} are refused by Knative")
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        gpu = False
        for where, c in containers(pod):
            loc = f"{wl.ref} {where} ({c.get('name')})"
            if effective(pod, c, "runAsNonRoot") is not True:
                ctx.error(loc, "securityContext.runAsNonRoot must be true")
            if effective(pod, c, "runAsUser") == 0:
                ctx.error(loc, "runAsUser 0")
            sc = c.get("securityContext") or {}
            if sc.get("privileged"):
                ctx.error(loc, "privileged")
            if sc.get("allowPrivilegeEscalation") is not False:
                ctx.error(loc, "securityContext.allowPrivilegeEscalation must be false")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                ctx.error(loc, "securityContext.capabilities.drop must contain ALL")
            if caps.get("add"):
                ctx.error(loc, f"adds capabilities {caps['add']}")
            seccomp = (effective(pod, c, "seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                ctx.error(loc, "seccompProfile must be RuntimeDefault (container or pod securityContext)")
            if sc.get("readOnlyRootFilesystem") is not True:
                ctx.error(loc, "securityContext.readOnlyRootFilesystem must be true")
            elif (df := ctx.repo.dockerfiles.get(image_basename(c.get("image", "")))) is not None:
                scratch = df.env.get("TMPDIR", "/tmp")
                tmp = [m for m in c.get("volumeMounts") or [] if m.get("mountPath") == scratch]
                if not tmp or "emptyDir" not in (volumes.get(tmp[0].get("name")) or {}):
                    ctx.error(loc, f"read-only root filesystem without an emptyDir at {scratch} (the image's "
                                   "TMPDIR: Python, torch and onnxruntime write temporary files there)")
            resources = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    if res not in (resources.get(kind) or {}):
                        ctx.error(loc, f"resources.{kind}.{res} is not set")
            gpus = (resources.get("limits") or {}).get("nvidia.com/gpu")
            if gpus is not None:
                gpu = True
                req = (resources.get("requests") or {}).get("nvidia.com/gpu")
                if req is not None and str(req) != str(gpus):
                    ctx.error(loc, "nvidia.com/gpu requests must equal limits")
            if wl.long_running and where.startswith("containers"):
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in c:
                        ctx.error(loc, f"no {probe}")
            for env in c.get("env") or []:
                if "value" in env and re.search(r"(?i)(password|token|secret)", env.get("name", "")) \
                        and env["value"] and "$(" not in str(env["value"]):
                    ctx.error(loc, f"env {env['name']} has an inline value: reference a Secret (secretKeyRef)")
        if gpu:
            tolerates = any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations") or [])
            selects = bool(pod.get("nodeSelector")) or bool((pod.get("affinity") or {}).get("nodeAffinity"))
            if not tolerates or not selects:
                ctx.error(wl.ref, "requests nvidia.com/gpu: add a nodeSelector (or node affinity) for GPU nodes "
                                  "and a toleration for the nvidia.com/gpu taint")


def check_rbac(ctx: Context) -> None:
    for obj in ctx.of_kind("ClusterRole", "ClusterRoleBinding"):
        ctx.error(ref(obj), "cluster-wide RBAC: everything Naviyam needs is namespaced")
    roles = {d["metadata"]["name"]: d for d in ctx.of_kind("Role")}
    for role in roles.values():
        for i, rule in enumerate(role.get("rules") or []):
            for key in ("apiGroups", "resources", "verbs"):
                if "*" in (rule.get(key) or []):
                    ctx.error(f"{ref(role)} rules[{i}]", f"wildcard in {key}")
    bound_sas = set()
    for rb in ctx.of_kind("RoleBinding"):
        role_ref = rb.get("roleRef") or {}
        for s in rb.get("subjects") or []:
            if s.get("kind") == "ServiceAccount":
                if s.get("namespace") != ctx.namespace:
                    ctx.error(ref(rb), f"subject ServiceAccount {s.get('name')} is in namespace {s.get('namespace')!r}, "
                                       f"the objects are in {ctx.namespace!r} (kustomize does not rewrite it)")
                bound_sas.add(s.get("name"))
        if role_ref.get("kind") != "Role" or role_ref.get("name") not in roles:
            ctx.error(ref(rb), f"roleRef {role_ref.get('kind')}/{role_ref.get('name')} is not a Role of the build")
    pipeline = roles.get("naviyam-pipeline")
    if pipeline is None:
        ctx.error("Role/naviyam-pipeline", "missing: the learning loop needs get/list/patch on InferenceServices")
    else:
        verbs = set()
        for i, rule in enumerate(pipeline.get("rules") or []):
            if set(rule.get("apiGroups") or []) != {"serving.kserve.io"} \
                    or set(rule.get("resources") or []) != {"inferenceservices"}:
                ctx.error(f"Role/naviyam-pipeline rules[{i}]", "may only cover serving.kserve.io inferenceservices")
            extra = set(rule.get("verbs") or []) - {"get", "list", "patch"}
            if extra:
                ctx.error(f"Role/naviyam-pipeline rules[{i}]", f"verbs beyond get/list/patch: {sorted(extra)}")
            verbs |= set(rule.get("verbs") or [])
        if verbs != {"get", "list", "patch"}:
            ctx.error("Role/naviyam-pipeline", f"must grant get, list and patch (canary + rollback); grants {sorted(verbs)}")
    for other in sorted(set(roles) - {"naviyam-pipeline"}):
        ctx.error(f"Role/{other}", "unexpected Role: only naviyam-pipeline talks to the API server")
    for sa in sorted(bound_sas - {"naviyam-pipeline"}):
        ctx.error(f"ServiceAccount/{sa}", "is bound to a Role: only naviyam-pipeline may be")
    for wl in workloads(ctx.docs):
        sa = (wl.pod or {}).get("serviceAccountName")
        if sa in bound_sas:
            ctx.error(wl.ref, f"runs as {sa}, which holds API permissions: workloads get none")
    for graph in ctx.of_kind("InferenceGraph"):
        sa = graph["spec"].get("serviceAccountName")
        if not sa or sa in bound_sas:
            ctx.error(ref(graph), "set spec.serviceAccountName to a ServiceAccount without API permissions")


def check_secrets(ctx: Context) -> None:
    for obj in ctx.of_kind("Secret"):
        if obj.get("data") or obj.get("stringData"):
            ctx.error(ref(obj), "a Secret with data in the manifests: create it out of band and reference it")
    needed, optional = set(), set()
    for wl in workloads(ctx.docs):
        for _, c in containers(wl.pod or {}):
            for env in c.get("env") or []:
                key_ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if key_ref:
                    (optional if key_ref.get("optional") else needed).add(f"{key_ref.get('name')}/{key_ref.get('key')}")
    if needed:
        ctx.note(f"secrets to create before applying: {', '.join(sorted(needed))}")
    if optional - needed:
        ctx.note(f"optional secrets (features stay off without them): {', '.join(sorted(optional - needed))}")
