"""The Context every check reports into, the workloads (every pod a build would create) and the
helpers the checks share: containers, image references, argv flags, label selectors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from tools.manifests.repo import Dockerfile, Repo

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


@dataclass
class Workload:
    obj: dict
    ref: str                      # Kind/name[/component], for messages
    kind: str
    name: str
    isvc_component: str | None    # predictor | transformer | explainer (InferenceServices only)
    pod: dict | None              # the pod spec (None: KServe builds it, e.g. the graph router)
    labels: dict[str, str]
    min_replicas: int
    long_running: bool
    path: str                     # JSON-ish path of the pod spec inside the object, for messages


def workloads(docs: list[dict]) -> Iterator[Workload]:
    for obj in docs:
        kind, meta = obj.get("kind"), obj.get("metadata") or {}
        name = meta.get("name", "?")
        labels = dict(meta.get("labels") or {})
        spec = obj.get("spec") or {}
        if kind == "InferenceService":
            for comp in ("predictor", "transformer", "explainer"):
                if comp in spec:
                    c = spec[comp]
                    pod_labels = {**labels, **(c.get("labels") or {}),
                                  "serving.kserve.io/inferenceservice": name, "component": comp}
                    yield Workload(obj, f"InferenceService/{name}/{comp}", kind, name, comp, c, pod_labels,
                                   int(c.get("minReplicas", 1)), True, f"spec.{comp}")
        elif kind == "InferenceGraph":
            yield Workload(obj, f"InferenceGraph/{name}", kind, name, None, None,
                           {**labels, "serving.kserve.io/inferencegraph": name},
                           int(spec.get("minReplicas", 1)), True, "spec")
        elif kind in ("Deployment", "StatefulSet", "DaemonSet"):
            t = spec.get("template") or {}
            yield Workload(obj, f"{kind}/{name}", kind, name, None, t.get("spec") or {},
                           dict((t.get("metadata") or {}).get("labels") or {}), int(spec.get("replicas", 1)),
                           True, "spec.template.spec")
        elif kind == "Job":
            t = spec.get("template") or {}
            yield Workload(obj, f"Job/{name}", kind, name, None, t.get("spec") or {},
                           dict((t.get("metadata") or {}).get("labels") or {}), 1, False, "spec.template.spec")
        elif kind == "CronJob":
            t = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
            yield Workload(obj, f"CronJob/{name}", kind, name, None, t.get("spec") or {},
                           dict((t.get("metadata") or {}).get("labels") or {}), 1, False,
                           "spec.jobTemplate.spec.template.spec")


def containers(pod: dict) -> Iterator[tuple[str, dict]]:
    for key in ("initContainers", "containers"):
        for i, c in enumerate(pod.get(key) or []):
            yield f"{key}[{i}]", c


def image_name(ref: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference; a registry port is not mistaken for a tag."""
    name, _, digest = ref.partition("@")
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def image_basename(ref: str) -> str:
    return image_name(ref)[0].rsplit("/", 1)[-1]


def arg_value(argv: list[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def match_selector(selector: dict | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (an empty selector matches everything)."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != str(v):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# ==================================================================================================
# The checks


@dataclass
class Context:
    overlay: str
    docs: list[dict]
    repo: Repo
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    namespace: str | None = None
    mode: str | None = None
    settings: dict | None = None

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"[{self.overlay}] {where}: {message}")

    def note(self, message: str) -> None:
        self.notes.append(f"[{self.overlay}] {message}")

    def of_kind(self, *kinds: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") in kinds]

    def isvcs(self) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.of_kind("InferenceService")}


def ref(obj: dict) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def effective_argv(container: dict, dockerfile: Dockerfile | None) -> list[str] | None:
    """The process a container runs: Kubernetes' command/args over the image's ENTRYPOINT/CMD."""
    if "command" in container:
        return list(container["command"]) + list(container.get("args") or [])
    if dockerfile is None or dockerfile.entrypoint is None:
        return None
    args = container["args"] if "args" in container else (dockerfile.cmd or [])
    return list(dockerfile.entrypoint) + list(args)
