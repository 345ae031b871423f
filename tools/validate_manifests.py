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
import ast
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.33.0"  # kind's and most managed clusters' current minor; kubernetes-validate ships its schemas
MODEL_SERVER_PORT = 8080  # KServe's convention for custom containers (and Knative's $PORT)
KSERVE_KINDS = ("InferenceService", "InferenceGraph", "ServingRuntime", "ClusterServingRuntime")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
# Runnable modules in components/ that are laptop tools, not deployed components.
DEV_ONLY_MODULES = {"components.local_stack", "components.bench", "components.demo"}
FEEDBACK_MODULE = "components.feedback"
SERVER_MODULE = "components.server"
# Images not built from docker/: pinned third-party images the manifests may use.
THIRD_PARTY_IMAGES = {"redis", "postgres"}
# The learning loop canaries and rolls back these two (pipelines/README.md).
CANARY_SERVICES = ("naviyam-ranker", "naviyam-nlg")
APP_NAMESPACE = "naviyam-app"  # the chatbot app's namespace: may reach the graph router and feedback only
# Flags of kserve.model_server.parser (kserve 0.21) that a model-server container may pass, plus
# components.server's own --component. tests/manifests checks this list against the installed kserve.
KSERVE_SERVER_FLAGS = {
    "--http_port", "--grpc_port", "--workers", "--max_threads", "--max_asyncio_workers", "--enable_grpc",
    "--enable_docs_url", "--enable_latency_logging", "--configure_logging", "--log_config_file",
    "--access_log_format", "--event-loop", "--timeout-keep-alive", "--model_name", "--predictor_host",
    "--protocol", "--predictor_protocol", "--predictor_use_ssl", "--predictor_request_timeout_seconds",
    "--grpc_max_send_message_length", "--grpc_max_receive_message_length", "--predictor_request_retries",
    "--enable_predictor_health_check", "--ssl_certfile", "--ssl_keyfile",
}
SERVER_FLAGS = KSERVE_SERVER_FLAGS | {"--component"}
# NAVIYAM_* variables that are not Settings fields (read by naviyam.features.store / config.py).
NON_SETTINGS_ENV = {"NAVIYAM_CONFIG", "NAVIYAM_FEAST_PROFILE", "NAVIYAM_FEATURE_REPO"}
# State on a cluster: PostgreSQL (manifests/base/postgres.yaml). Every process that keeps state gets
# the DSN (Settings.state.dsn) from Secret naviyam-postgres, key dsn; without it it would fall back to
# SQLite files, which replicas on a shared volume corrupt.
STATE_DSN_ENV = "NAVIYAM_STATE__DSN"
STATE_SECRET = "naviyam-postgres"   # keys: dsn (the clients), password (the server, the backup job)
STATE_DSN_KEY = "dsn"
# What keeps state (memory, the event log, the registry's pointers, the loop state). The retriever,
# the candidates and the Feast materialisation code read only the home volumes: no DSN for them.
STATE_COMPONENTS = {"naviyam-nlu", "naviyam-nlg", "naviyam-ranker-transformer", "naviyam-ranker-predictor",
                    "naviyam-feedback"}
STATE_MODULES = {"naviyam.cli"}  # `naviyam build` registers models and trains on the event log
POSTGRES_PASSWORD_ENV = {"POSTGRES_PASSWORD", "PGPASSWORD"}
DSN_WITH_PASSWORD = re.compile(r"postgres(?:ql)?(?:\+\w+)?://[^/\s:@]+:[^@\s]+@", re.IGNORECASE)
KFP_POD_LABELS = {"pipelines.kubeflow.org/v2_component": "true"}  # Kubeflow Pipelines v2 labels every pod of a run
CONFIG_MAP = "naviyam-config"
CONFIG_KEY = "config.yaml"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS_ANNOTATION = "serving.kserve.io/autoscalerClass"
KNATIVE_CLASS_ANNOTATION = "autoscaling.knative.dev/class"
MODES = {"Knative": "Knative", "Serverless": "Knative", "Standard": "Standard", "RawDeployment": "Standard"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass", "ClusterServingRuntime"}
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

CHECKS = """\
build        the overlay builds with kubectl kustomize
schema       built-in kinds: kubernetes-validate --strict for Kubernetes {k8s}; custom resources: their CRD's
             openAPIV3Schema from ../shared/crds, unknown fields rejected (skipped, with a note, when absent)
namespace    every namespaced object in one namespace; RoleBinding subjects in it
images       naviyam images have docker/<image>.Dockerfile; every image has a tag or digest, never :latest;
             third-party images are allow-listed; every Dockerfile is used
commands     every container's command (Dockerfile ENTRYPOINT/CMD + args) runs a real module: components.server
             with --component/--model_name in COMPONENTS and --model_name = the InferenceService name,
             components.feedback, or `python -m/-c` code whose imports and keywords exist
components   every COMPONENTS entry and the feedback service has exactly one manifest and an image
             (docker/<component>.Dockerfile whose ENTRYPOINT/CMD run it); every runnable module in
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


# ==================================================================================================
# Repository facts (parsed, never imported: kserve.model_server parses sys.argv on import)
# ==================================================================================================

@dataclass
class Dockerfile:
    path: Path
    stages: int
    base_images: list[str]
    entrypoint: list[str] | None
    cmd: list[str] | None
    user: str | None
    text: str
    env: dict[str, str] = field(default_factory=dict)  # the final stage's ENV


@dataclass
class Repo:
    root: Path
    manifests: Path
    docker: Path
    crds: Path
    graph_file: Path
    components: tuple[str, ...] = ()
    fanout: tuple[str, ...] = ()
    runnable_component_modules: set[str] = field(default_factory=set)
    dockerfiles: dict[str, Dockerfile] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path, manifests: Path | None = None, docker: Path | None = None,
             crds: Path | None = None, graph_file: Path | None = None) -> "Repo":
        root = root.resolve()
        repo = cls(root=root, manifests=(manifests or root / "manifests").resolve(),
                   docker=(docker or root / "docker").resolve(),
                   crds=(crds or root.parent / "shared" / "crds").resolve(),
                   graph_file=(graph_file or root / "inference_graph" / "naviyam.yaml").resolve())
        repo.components = tuple(_module_constant(root / "components" / "server.py", "COMPONENTS"))
        repo.fanout = tuple(_module_constant(root / "components" / "ranker_transformer.py", "FANOUT"))
        for path in sorted((root / "components").glob("*.py")):
            if _is_runnable(path):
                repo.runnable_component_modules.add(f"components.{path.stem}")
        if repo.docker.is_dir():
            for path in sorted(repo.docker.glob("*.Dockerfile")):
                repo.dockerfiles[path.name.removesuffix(".Dockerfile")] = parse_dockerfile(path)
        return repo

    def module_file(self, module: str) -> Path | None:
        base = self.root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None


def _module_constant(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise SystemExit(f"{path}: no top-level {name} constant")


def _is_runnable(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return path.name == "__main__.py" or re.search(r"if\s+__name__\s*==\s*['\"]__main__['\"]", text) is not None


def parse_dockerfile(path: Path) -> Dockerfile:
    text = path.read_text(encoding="utf-8")
    logical, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    args: dict[str, str] = {}
    stages, bases = 0, []
    entrypoint = cmd = user = None
    env: dict[str, str] = {}
    for line in logical:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "ARG" and stages == 0:
            key, _, value = rest.strip().partition("=")
            args[key] = value
        elif instr == "FROM":
            stages += 1
            image = rest.split()[0]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
            bases.append(image)
            entrypoint = cmd = user = None  # the final stage's values win
            env = {}
        elif instr in ("ENTRYPOINT", "CMD"):
            try:
                value = json.loads(rest)
            except ValueError:
                value = ["/bin/sh", "-c", rest]  # shell form
            if instr == "ENTRYPOINT":
                entrypoint = value
            else:
                cmd = value
        elif instr == "USER":
            user = rest.strip()
        elif instr == "ENV":
            for token in shlex.split(rest):
                key, sep, value = token.partition("=")
                if sep:
                    env[key] = value
    return Dockerfile(path, stages, bases, entrypoint, cmd, user, text, env)


# ==================================================================================================
# Building
# ==================================================================================================

class BuildError(Exception):
    pass


def find_kubectl() -> str | None:
    """The venv's kubectl (the pinned one tools.install_kubectl installs), else the first on PATH."""
    venv = Path(sys.prefix) / "bin" / "kubectl"
    return str(venv) if os.access(venv, os.X_OK) else shutil.which("kubectl")


def build_overlay(path: Path, kubectl: str | None = None) -> tuple[list[dict], str]:
    kubectl = kubectl or find_kubectl()
    if kubectl is None:
        raise BuildError("no kubectl: `make venv` puts one in .venv/bin (python -m tools.install_kubectl), "
                         "or put kubectl >= 1.27 on PATH")
    proc = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise BuildError(f"kubectl kustomize {path}: {proc.stderr.strip()}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(proc.stdout, Loader=loader) if d is not None], f"{kubectl} kustomize"


# ==================================================================================================
# Schema validation
# ==================================================================================================

@functools.lru_cache(maxsize=None)
def _kubernetes_validate():
    """kubernetes_validate, with its schema files read once per process instead of once per object."""
    import kubernetes_validate
    import kubernetes_validate.utils as utils

    if not hasattr(utils.schema_contents, "cache_info"):
        utils.schema_contents = functools.lru_cache(maxsize=None)(utils.schema_contents)
    return kubernetes_validate


def validate_builtin(obj: dict, version: str = K8S_VERSION) -> str | None:
    kubernetes_validate = _kubernetes_validate()
    from kubernetes_validate.utils import SchemaNotFoundError

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(root)"
        return f"{where}: {exc.message}"
    except SchemaNotFoundError as exc:
        return f"no Kubernetes {version} schema for {obj.get('apiVersion')} {obj.get('kind')} ({exc.message})"
    return None


def strict_schema(schema: Any) -> Any:
    """A copy of a CRD schema that rejects unknown fields and understands `nullable`."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {k: strict_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = strict_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = strict_schema(value)
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@functools.lru_cache(maxsize=None)
def load_crd_validators(crd_dir: str) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> jsonschema validator, for every CRD file in crd_dir."""
    import jsonschema

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are 2 MB of YAML
    out = {}
    for path in sorted(Path(crd_dir).glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = strict_schema(version["schema"]["openAPIV3Schema"])
                out[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return out


def api_group(obj: dict) -> str:
    api = obj.get("apiVersion", "")
    return api.rsplit("/", 1)[0] if "/" in api else ""


def validate_crd(obj: dict, validators: dict) -> list[str]:
    validator = validators.get((obj.get("apiVersion"), obj.get("kind")))
    if validator is None:
        served = sorted(v for v, k in validators if k == obj.get("kind"))
        return [f"apiVersion {obj.get('apiVersion')} is not served by the CRD (served: {', '.join(served) or 'none'})"]
    errors = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path) or "(root)"
        message = err.message
        if err.validator == "additionalProperties":
            message = f"unknown field(s): {message.split('(')[-1].rstrip(')')}"
        errors.append(f"{where}: {message}")
    return errors[:20]


# ==================================================================================================
# Workloads: every pod a build would create
# ==================================================================================================

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
# ==================================================================================================

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


def check_schemas(ctx: Context, k8s_version: str) -> None:
    crds = ctx.repo.crds
    validators = load_crd_validators(str(crds)) if crds.is_dir() else {}
    crd_kinds = {(api.rsplit("/", 1)[0], kind) for api, kind in validators}
    unchecked = set()
    for obj in ctx.docs:
        group = api_group(obj)
        if (group, obj["kind"]) in crd_kinds:
            for problem in validate_crd(obj, validators):
                ctx.error(ref(obj), f"CRD schema: {problem}")
        elif "." in group and not group.endswith(".k8s.io"):
            if validators:
                ctx.error(ref(obj), f"no schema for {obj['apiVersion']} {obj['kind']}: neither a built-in kind "
                                    f"nor a CRD of {crds}")
            else:
                unchecked.add(f"{obj['apiVersion']} {obj['kind']}")
        else:
            problem = validate_builtin(obj, k8s_version)
            if problem:
                ctx.error(ref(obj), f"kubernetes-validate --strict ({k8s_version}): {problem}")
    if not validators:
        ctx.note(f"SKIP CRD schema check: no CRD files at {crds} (expected ../shared/crds beside the checkout: "
                 f"KServe's and the Prometheus Operator's); not schema-validated: "
                 f"{', '.join(sorted(unchecked)) or 'no custom resources in the build'}")


def effective_argv(container: dict, dockerfile: Dockerfile | None) -> list[str] | None:
    """The process a container runs: Kubernetes' command/args over the image's ENTRYPOINT/CMD."""
    if "command" in container:
        return list(container["command"]) + list(container.get("args") or [])
    if dockerfile is None or dockerfile.entrypoint is None:
        return None
    args = container["args"] if "args" in container else (dockerfile.cmd or [])
    return list(dockerfile.entrypoint) + list(args)


def check_images_and_commands(ctx: Context) -> dict[str, list[tuple[Workload, str]]]:
    """Returns {component: [(workload, container path)]} for the coverage check."""
    repo = ctx.repo
    runs: dict[str, list[tuple[Workload, str]]] = {}
    used_dockerfiles = set()
    for wl in workloads(ctx.docs):
        if wl.pod is None:
            continue
        for where, c in containers(wl.pod):
            loc = f"{wl.ref} {where} ({c.get('name')})"
            image = c.get("image")
            if not image:
                ctx.error(loc, "no image")
                continue
            name, tag, digest = image_name(image)
            base = image_basename(image)
            if not tag and not digest:
                ctx.error(loc, f"image {image} has no tag or digest (that is :latest)")
            if tag == "latest":
                ctx.error(loc, f"image {image}: :latest is not a pinned tag")
            dockerfile = repo.dockerfiles.get(base)
            if dockerfile is None:
                if base in THIRD_PARTY_IMAGES:
                    if tag and not re.search(r"\d", tag):
                        ctx.error(loc, f"third-party image {image}: pin a version tag")
                    continue
                ctx.error(loc, f"image {image}: no Dockerfile docker/{base}.Dockerfile (and not an "
                               f"allow-listed third-party image: {', '.join(sorted(THIRD_PARTY_IMAGES))})")
                continue
            used_dockerfiles.add(base)
            argv = effective_argv(c, dockerfile)
            if argv is None:
                ctx.error(loc, f"cannot tell what it runs: no command and docker/{base}.Dockerfile has no ENTRYPOINT")
                continue
            component = check_command(ctx, wl, loc, c, argv)
            if component:
                runs.setdefault(component, []).append((wl, where))
                if base != component:
                    ctx.error(loc, f"runs {component} from image {base}: the image of a component is "
                                   f"named after it (docker/{component}.Dockerfile)")
    for base in sorted(set(repo.dockerfiles) - used_dockerfiles):
        ctx.error(f"docker/{base}.Dockerfile", "image is not used by any object of this overlay")
    return runs


def check_command(ctx: Context, wl: Workload, loc: str, c: dict, argv: list[str]) -> str | None:
    """Check the process; return the component it runs (COMPONENTS name or 'naviyam-feedback')."""
    repo = ctx.repo
    if not argv or Path(argv[0]).name not in ("python", "python3", "python3.11"):
        ctx.error(loc, f"runs {shlex.join(argv)}: not a Python module of this repository")
        return None
    rest = argv[1:]
    if rest[:1] == ["-c"] and len(rest) > 1:
        check_python_code(ctx, loc, rest[1])
        return None
    if rest[:1] != ["-m"] or len(rest) < 2:
        ctx.error(loc, f"runs {shlex.join(argv)}: expected `python -m MODULE` or `python -c CODE`")
        return None
    module, flags = rest[1], rest[2:]
    path = repo.module_file(module)
    if path is None:
        ctx.error(loc, f"python -m {module}: no such module in the repository")
        return None
    entry = path.with_name("__main__.py") if path.name == "__init__.py" else path
    if not entry.is_file() or not _is_runnable(entry):
        ctx.error(loc, f"python -m {module}: the module has no `if __name__ == \"__main__\"` entry point")
        return None
    if module == SERVER_MODULE:
        return check_model_server(ctx, wl, loc, c, flags)
    if module == FEEDBACK_MODULE:
        check_feedback(ctx, wl, loc, c, flags)
        return "naviyam-feedback"
    if module in DEV_ONLY_MODULES:
        ctx.error(loc, f"python -m {module}: a laptop tool, not a deployable component")
    return None


def check_model_server(ctx: Context, wl: Workload, loc: str, c: dict, flags: list[str]) -> str | None:
    repo = ctx.repo
    for flag in flags:
        if flag.startswith("--") and flag.split("=", 1)[0] not in SERVER_FLAGS:
            ctx.error(loc, f"components.server does not take {flag} (not a kserve.model_server flag)")
    if wl.kind != "InferenceService":
        ctx.error(loc, "components.server is a KServe model server: run it as an InferenceService component")
        return None
    isvc_name = wl.name
    model_name = arg_value(flags, "--model_name")
    component = arg_value(flags, "--component")
    if model_name is None:
        if wl.isvc_component == "transformer":
            model_name = isvc_name  # KServe appends --model_name <isvc> to a custom transformer
        else:
            ctx.error(loc, "components.server needs --model_name (KServe only adds it to transformers)")
            return None
    if model_name != isvc_name:
        ctx.error(loc, f"--model_name {model_name} differs from the InferenceService name {isvc_name}: "
                       f"KServe, the graph and serving.service_urls address /v1/models/{isvc_name}")
    effective = component or model_name
    if effective not in repo.components:
        what = f"--component {component}" if component else f"--model_name {model_name} (no --component)"
        ctx.error(loc, f"{what} is not one of components/server.py COMPONENTS: {', '.join(repo.components)}")
        return None
    expected_slot = "transformer" if effective.endswith("-transformer") else "predictor"
    if wl.isvc_component != expected_slot:
        ctx.error(loc, f"{effective} must be the InferenceService's {expected_slot}, not its {wl.isvc_component}")
    port = arg_value(flags, "--http_port")
    if port is not None and port != str(MODEL_SERVER_PORT):
        ctx.error(loc, f"--http_port {port}: KServe routes to {MODEL_SERVER_PORT}")
    if wl.isvc_component == "transformer":
        if arg_value(flags, "--predictor_host") is not None:
            ctx.error(loc, "--predictor_host is set by KServe (<isvc>-predictor.<namespace>, canary-aware): "
                           "do not hard-code it")
        if arg_value(flags, "--predictor_protocol") != "v2":
            ctx.error(loc, "the ranker transformer sends open-inference (v2) requests to its predictor: "
                           "pass --predictor_protocol v2")
        timeout = arg_value(flags, "--predictor_request_timeout_seconds")
        serving = (ctx.settings or {}).get("serving") or {}
        if timeout is not None and "predictor_timeout_s" in serving:
            want = max(1, round(float(serving["predictor_timeout_s"])))
            if str(want) != timeout:
                ctx.error(loc, f"--predictor_request_timeout_seconds {timeout} disagrees with "
                               f"serving.predictor_timeout_s ({serving['predictor_timeout_s']} -> {want})")
    check_model_server_container(ctx, wl, loc, c)
    return effective


def check_model_server_container(ctx: Context, wl: Workload, loc: str, c: dict) -> None:
    if c.get("name") != "kserve-container":
        ctx.error(loc, "the model-server container of a custom InferenceService component must be named "
                       "kserve-container (KServe finds it by that name)")
    ports = c.get("ports") or []
    if [p.get("containerPort") for p in ports] != [MODEL_SERVER_PORT]:
        ctx.error(loc, f"model servers expose exactly one port, {MODEL_SERVER_PORT}: got "
                       f"{[p.get('containerPort') for p in ports]}")
    for p in ports:
        if p.get("name") not in (None, "http1", "h2c"):
            ctx.error(loc, f"port name {p.get('name')!r}: Knative accepts only http1 or h2c")
    ready = ((c.get("readinessProbe") or {}).get("httpGet") or {})
    live = ((c.get("livenessProbe") or {}).get("httpGet") or {})
    want_ready = f"/v2/models/{wl.name}/ready"
    if ready.get("path") != want_ready or ready.get("port") not in (MODEL_SERVER_PORT, "http1"):
        ctx.error(loc, f"readinessProbe must be httpGet {want_ready} on port {MODEL_SERVER_PORT}, got {ready or None}")
    if live.get("path") != "/v2/health/live" or live.get("port") not in (MODEL_SERVER_PORT, "http1"):
        ctx.error(loc, f"livenessProbe must be httpGet /v2/health/live on port {MODEL_SERVER_PORT}, got {live or None}")


def check_feedback(ctx: Context, wl: Workload, loc: str, c: dict, flags: list[str]) -> None:
    port = arg_value(flags, "--port")
    if port is None:
        ctx.error(loc, "components.feedback needs an explicit --port (its default comes from settings)")
        return
    names = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    if int(port) not in names.values():
        ctx.error(loc, f"--port {port} is not a containerPort ({sorted(v for v in names.values() if v)})")
    serving = (ctx.settings or {}).get("serving") or {}
    configured = (serving.get("ports") or {}).get("naviyam-feedback")
    if configured is not None and str(configured) != port:
        ctx.error(loc, f"--port {port} differs from serving.ports.naviyam-feedback ({configured}) in {CONFIG_MAP}")
    for probe in ("readinessProbe", "livenessProbe"):
        get = ((c.get(probe) or {}).get("httpGet") or {})
        p = get.get("port")
        p = names.get(p, p)
        if get.get("path") != "/healthz" or str(p) != port:
            ctx.error(loc, f"{probe} must be httpGet /healthz on port {port}, got {get or None}")
    if wl.kind != "Deployment":
        ctx.error(loc, "the feedback service runs as a Deployment")


def check_python_code(ctx: Context, loc: str, code: str) -> None:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        ctx.error(loc, f"python -c: syntax error: {exc}")
        return
    imported: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("naviyam", "components"):
            path = ctx.repo.module_file(node.module)
            if path is None:
                ctx.error(loc, f"python -c: from {node.module} import ...: no such module")
                continue
            defined = _top_level_names(path)
            for alias in node.names:
                if alias.name not in defined and ctx.repo.module_file(f"{node.module}.{alias.name}") is None:
                    ctx.error(loc, f"python -c: {node.module} has no {alias.name}")
                else:
                    imported[alias.asname or alias.name] = (node.module, alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported:
            module, name = imported[node.func.id]
            params = _function_params(ctx.repo.module_file(module), name)
            if params is None:
                continue
            names, has_kwargs = params
            for kw in node.keywords:
                if kw.arg and kw.arg not in names and not has_kwargs:
                    ctx.error(loc, f"python -c: {module}.{name}() has no parameter {kw.arg!r}")


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _function_params(path: Path | None, name: str) -> tuple[set[str], bool] | None:
    if path is None:
        return None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            a = node.args
            names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
            return names, a.kwarg is not None
    return None


def check_coverage(ctx: Context, runs: dict[str, list[tuple[Workload, str]]]) -> None:
    repo = ctx.repo
    for component in (*repo.components, "naviyam-feedback"):
        found = runs.get(component, [])
        if not found:
            ctx.error(f"component {component}", "has no manifest: no container of this overlay runs it "
                                                "(components/server.py COMPONENTS + the feedback service)")
        elif len(found) > 1 and component != "naviyam-feedback":
            ctx.error(f"component {component}", f"runs in several places: {[w.ref for w, _ in found]}")
    deployed = {SERVER_MODULE, FEEDBACK_MODULE}
    for module in sorted(repo.runnable_component_modules - deployed - DEV_ONLY_MODULES):
        ctx.error(f"components/{module.split('.')[-1]}.py", "is runnable but neither deployed by a manifest "
                  "nor declared dev-only (tools/validate_manifests.DEV_ONLY_MODULES)")


def check_dockerfiles(repo: Repo) -> list[str]:
    """Repository-level checks of docker/ (independent of the overlay)."""
    errors = []
    if not repo.dockerfiles:
        return [f"{repo.docker}: no *.Dockerfile"]
    for component in (*repo.components, "naviyam-feedback"):
        if component not in repo.dockerfiles:
            errors.append(f"component {component}: no image (docker/{component}.Dockerfile)")
    for name, df in repo.dockerfiles.items():
        where = f"docker/{name}.Dockerfile"
        if df.stages < 2:
            errors.append(f"{where}: not a multi-stage build")
        for base in df.base_images:
            if not re.match(r"^python:3\.11[.\d]*-slim", base):
                errors.append(f"{where}: base image {base} is not a pinned python:3.11-slim tag")
        if not re.search(r"torch==2\.13\.0", df.text):
            errors.append(f"{where}: does not install torch==2.13.0 first")
        if "requirements.lock" not in df.text:
            errors.append(f"{where}: does not install requirements.lock")
        if df.user is None or df.user.split(":")[0] in ("0", "root"):
            errors.append(f"{where}: the final stage must switch to a non-root USER")
        elif not df.user.split(":")[0].isdigit():
            errors.append(f"{where}: USER {df.user}: use a numeric uid so runAsNonRoot can verify it")
        if df.entrypoint is None or df.entrypoint[:1] != ["python"]:
            errors.append(f"{where}: ENTRYPOINT must be an exec-form python command")
            continue
        if name in repo.components:
            if df.entrypoint != ["python", "-m", SERVER_MODULE]:
                errors.append(f"{where}: ENTRYPOINT must be [\"python\", \"-m\", \"{SERVER_MODULE}\"]")
            cmd = df.cmd or []
            effective = arg_value(cmd, "--component") or arg_value(cmd, "--model_name")
            if effective != name:
                errors.append(f"{where}: CMD runs {effective}, not {name}")
        elif name == "naviyam-feedback":
            if df.entrypoint != ["python", "-m", FEEDBACK_MODULE]:
                errors.append(f"{where}: ENTRYPOINT must be [\"python\", \"-m\", \"{FEEDBACK_MODULE}\"]")
    return errors


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


def _settings_fields() -> dict | None:
    """Settings' field tree {name: subtree or None}; None when naviyam.config cannot be imported."""
    try:
        sys.path.insert(0, str(REPO_ROOT))
        from naviyam.config import Settings
        from pydantic import BaseModel
    except Exception:  # noqa: BLE001 - pydantic or the package missing: skip that part
        return None

    def tree(model) -> dict:
        out = {}
        for name, info in model.model_fields.items():
            ann = info.annotation
            out[name] = tree(ann) if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        return out
    return tree(Settings)


def check_config(ctx: Context) -> None:
    cms = [d for d in ctx.of_kind("ConfigMap") if d["metadata"]["name"] == CONFIG_MAP]
    if not cms or CONFIG_KEY not in (cms[0].get("data") or {}):
        ctx.error(f"ConfigMap/{CONFIG_MAP}", f"missing (or without {CONFIG_KEY}): NAVIYAM_CONFIG points at it")
        return
    try:
        settings = yaml.safe_load(cms[0]["data"][CONFIG_KEY]) or {}
    except yaml.YAMLError as exc:
        ctx.error(f"ConfigMap/{CONFIG_MAP}", f"{CONFIG_KEY} is not YAML: {exc}")
        return
    ctx.settings = settings
    fields = _settings_fields()
    if fields is None:
        ctx.note("naviyam.config not importable: settings keys were not checked against Settings")
    else:
        def walk(node: dict, tree: dict, prefix: str) -> None:
            for key, value in node.items():
                if key not in tree:
                    ctx.error(f"ConfigMap/{CONFIG_MAP}", f"unknown setting {prefix}{key} (naviyam/config.py)")
                elif isinstance(value, dict) and tree[key] is not None:
                    walk(value, tree[key], f"{prefix}{key}.")
        walk(settings, fields, "")
        try:
            from naviyam.config import Settings
            Settings.model_validate(settings)
        except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, shown as text
            ctx.error(f"ConfigMap/{CONFIG_MAP}", f"{CONFIG_KEY} is not valid Settings: {str(exc).splitlines()[0:3]}")
    serving = settings.get("serving") or {}
    if serving.get("host") not in ("0.0.0.0", "::"):
        ctx.error(f"ConfigMap/{CONFIG_MAP}", f"serving.host {serving.get('host', '127.0.0.1 (default)')}: the "
                                             "feedback service would listen on loopback only; use 0.0.0.0")
    isvcs = ctx.isvcs()
    urls = serving.get("service_urls") or {}
    for name in ctx.repo.fanout:
        if name not in urls:
            ctx.error(f"ConfigMap/{CONFIG_MAP}", f"serving.service_urls has no {name}: the ranker transformer calls it")
    for name, url in urls.items():
        if name not in isvcs:
            ctx.error(f"ConfigMap/{CONFIG_MAP}", f"serving.service_urls.{name}: no such InferenceService in the build")
            continue
        entry = "transformer" if "transformer" in isvcs[name]["spec"] else "predictor"
        want = f"http://{name}-{entry}.{ctx.namespace}.svc.cluster.local/v1/models/{name}:predict"
        if url != want:
            ctx.error(f"ConfigMap/{CONFIG_MAP}", f"serving.service_urls.{name} is {url}; the in-cluster URL is {want}")
    known_env = fields
    for wl in workloads(ctx.docs):
        pod = wl.pod or {}
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for where, c in containers(pod):
            if not image_basename(c.get("image", "")).startswith("naviyam-"):
                continue
            loc = f"{wl.ref} {where} ({c.get('name')})"
            env = {e.get("name"): e for e in c.get("env") or []}
            config_path = (env.get("NAVIYAM_CONFIG") or {}).get("value")
            mounts = [m for m in c.get("volumeMounts") or []
                      if ((volumes.get(m.get("name")) or {}).get("configMap") or {}).get("name") == CONFIG_MAP]
            if not config_path or not mounts or config_path != f"{mounts[0]['mountPath'].rstrip('/')}/{CONFIG_KEY}":
                ctx.error(loc, f"NAVIYAM_CONFIG must name {CONFIG_KEY} of a mounted {CONFIG_MAP} volume")
            for name in env:
                if not name or not name.startswith("NAVIYAM_") or name in NON_SETTINGS_ENV or known_env is None:
                    continue
                node = known_env
                for part in name[len("NAVIYAM_"):].lower().split("__"):
                    if not isinstance(node, dict) or part not in node:
                        ctx.error(loc, f"env {name} names no setting of naviyam/config.py")
                        break
                    node = node[part]


# -- NetworkPolicy simulation --------------------------------------------------------------------

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


def holds_state_secret(wl: Workload) -> bool:
    """A pod with NAVIYAM_STATE__DSN or any key of the state Secret (the backup job's PGPASSWORD)."""
    for _, c in containers(wl.pod or {}):
        for e in c.get("env") or []:
            key_ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
            if e.get("name") == STATE_DSN_ENV or key_ref.get("name") == STATE_SECRET:
                return True
    return False


def check_state(ctx: Context, runs: dict[str, list[tuple[Workload, str]]]) -> None:
    stateful = {(wl.ref, where) for component, found in runs.items() if component in STATE_COMPONENTS
                for wl, where in found}
    state_settings = (ctx.settings or {}).get("state")
    if isinstance(state_settings, dict) and state_settings.get("dsn"):
        ctx.error(f"ConfigMap/{CONFIG_MAP}", f"state.dsn is set in {CONFIG_KEY}: the DSN carries the password; it "
                                             f"comes from Secret {STATE_SECRET} (key {STATE_DSN_KEY}) as {STATE_DSN_ENV}")
    for wl in workloads(ctx.docs):
        pod = wl.pod or {}
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for where, c in containers(pod):
            loc = f"{wl.ref} {where} ({c.get('name')})"
            base = image_basename(c.get("image", ""))
            naviyam = base.startswith("naviyam-")
            env = c.get("env") or []
            for e in env:
                name, key_ref = e.get("name", ""), (e.get("valueFrom") or {}).get("secretKeyRef")
                if "value" in e and DSN_WITH_PASSWORD.search(str(e.get("value") or "")):
                    ctx.error(loc, f"env {name}: a PostgreSQL URL with a password in plain env; put the DSN in "
                                   f"Secret {STATE_SECRET} (key {STATE_DSN_KEY}) and reference it")
                if name in POSTGRES_PASSWORD_ENV and not key_ref:
                    ctx.error(loc, f"env {name}: the PostgreSQL password must come from a secretKeyRef "
                                   f"(Secret {STATE_SECRET}, key password), never a value")
            dsn = next((e for e in env if e.get("name") == STATE_DSN_ENV), None)
            if dsn is not None:
                key_ref = (dsn.get("valueFrom") or {}).get("secretKeyRef")
                if not key_ref:
                    ctx.error(loc, f"{STATE_DSN_ENV} must come from secretKeyRef {STATE_SECRET}/{STATE_DSN_KEY}: "
                                   "the DSN carries the password, and no pod composes it in env")
                elif (key_ref.get("name"), key_ref.get("key")) != (STATE_SECRET, STATE_DSN_KEY):
                    ctx.error(loc, f"{STATE_DSN_ENV} comes from {key_ref.get('name')}/{key_ref.get('key')}; "
                                   f"every state client reads {STATE_SECRET}/{STATE_DSN_KEY}")
                elif key_ref.get("optional"):
                    ctx.error(loc, f"{STATE_DSN_ENV} is optional: without the Secret the process would fall back "
                                   "to SQLite files in the pod; make it required")
            argv = effective_argv(c, ctx.repo.dockerfiles.get(base)) if naviyam else None
            module = argv[2] if argv and len(argv) > 2 and argv[1] == "-m" else None
            if ((wl.ref, where) in stateful or module in STATE_MODULES) and dsn is None:
                ctx.error(loc, f"keeps state (memory, events, registry pointers) but has no {STATE_DSN_ENV}: it "
                               "would write SQLite files, which several replicas on a shared volume corrupt")
            if naviyam and wl.long_running:
                for m in c.get("volumeMounts") or []:
                    claim = (volumes.get(m.get("name")) or {}).get("persistentVolumeClaim")
                    if claim and not (m.get("readOnly") or claim.get("readOnly")):
                        ctx.error(loc, f"mounts volume {claim.get('claimName')} writable: serving pods write no "
                                       "shared volume (state is in PostgreSQL; the jobs write the home volumes)")


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


def validate_overlay(path: Path, repo: Repo, kubectl: str | None = None, k8s_version: str = K8S_VERSION) -> Context:
    ctx = Context(path.name, [], repo)
    try:
        ctx.docs, how = build_overlay(path, kubectl)
    except BuildError as exc:
        ctx.error("build", str(exc))
        return ctx
    ctx.note(f"built {len(ctx.docs)} objects with {how}")
    check_structure(ctx)
    check_schemas(ctx, k8s_version)
    check_config(ctx)
    check_mode_canary_autoscaling(ctx)
    runs = check_images_and_commands(ctx)
    check_coverage(ctx, runs)
    check_state(ctx, runs)
    check_graph(ctx)
    check_security(ctx)
    check_knative(ctx)
    check_rbac(ctx)
    check_secrets(ctx)
    check_network(ctx)
    check_pdbs(ctx)
    check_jobs(ctx)
    ctx.note(f"deployment mode: {ctx.mode or 'unknown'}")
    return ctx


@dataclass
class Report:
    errors: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate(repo: Repo, overlays: list[str] | None = None, kubectl: str | None = None,
             k8s_version: str = K8S_VERSION) -> Report:
    errors = list(check_dockerfiles(repo))
    errors.extend(check_graph_copy(repo))
    notes: list[str] = []
    overlay_root = repo.manifests / "overlays"
    names = overlays or (sorted(p.name for p in overlay_root.iterdir() if p.is_dir()) if overlay_root.is_dir() else [])
    if not names:
        errors.append(f"{overlay_root}: no overlays")
    for name in names:
        ctx = validate_overlay(overlay_root / name, repo, kubectl, k8s_version)
        errors.extend(ctx.errors)
        notes.extend(ctx.notes)
    return Report(errors, notes)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.validate_manifests", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="checks:\n" + CHECKS.format(k8s=K8S_VERSION, canary=", ".join(CANARY_SERVICES)))
    parser.add_argument("--overlay", action="append", help="overlay name under manifests/overlays (repeatable; default all)")
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--manifests", type=Path, help="manifests directory (default: REPO/manifests)")
    parser.add_argument("--docker", type=Path, help="Dockerfile directory (default: REPO/docker)")
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


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    raise SystemExit(main())
