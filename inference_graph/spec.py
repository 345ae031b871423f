"""The KServe ``InferenceGraph`` (serving.kserve.io/v1alpha1) as pydantic models.

Three layers of checks, from the outside in:

1. ``validate_against_crd`` - the YAML against the CRD's ``openAPIV3Schema`` (jsonschema), plus the
   API server's strict field validation (an unknown field is an error, as with ``kubectl apply``).
   Runs only where the CRDs are present (``../shared/crds`` next to the repository).
2. The pydantic models - types and enums (``routerType``, ``dependency``), unknown fields rejected.
3. ``InferenceGraph.validate_graph`` - the rules of KServe's admission webhook
   (``inference_graph_validation.go``: graph name format, a ``root`` node, unique step names per
   node, exactly one target per step, Splitter weights present and summing to 100) and three of
   ours, marked ``[local]``: a condition must be GJSON that ``inference_graph.conditions``
   evaluates exactly as Go does (anything else would be a silent wrong branch), no cycles of
   nodes and no empty Sequence (on both Go's router recurses without end or panics).

Everything else KServe serves is served, with Go's run-time behaviour: a ``data`` other than
``$response`` sends the node's input, a condition on a Sequence's first step answers 500
``invalid response``, a ``nodeName`` that is not in the graph answers 500, a Switch step without a
condition matches only a body with the key ``""``. ``run_time_warnings`` names each such spot; the
router logs them when it starts.
"""
from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inference_graph.gjson_path import UnsupportedCondition
from inference_graph.gjson_path import check as check_condition

API_VERSION: Final = "serving.kserve.io/v1alpha1"
KIND: Final = "InferenceGraph"
ROOT_NODE = "root"
CRD_FILE = "serving.kserve.io_inferencegraphs.yaml"
NAVIYAM_GRAPH = Path(__file__).with_name("naviyam.yaml")
# <repo>/../shared/crds: the CRDs from KServe's config/crd/full, shared by the project's checkouts.
DEFAULT_CRD_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "crds"
GRAPH_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # the webhook's GraphNameFmt
DATA_REQUEST = "$request"
DATA_RESPONSE = "$response"


class GraphValidationError(ValueError):
    """The graph breaks one or more rules; ``errors`` lists every one found."""

    def __init__(self, errors: list[str], source: str | None = None):
        self.errors = list(errors)
        where = f"{source}: " if source else ""
        super().__init__(where + "invalid InferenceGraph:\n  - " + "\n  - ".join(self.errors))


class RouterType(str, Enum):
    SEQUENCE = "Sequence"
    SPLITTER = "Splitter"
    ENSEMBLE = "Ensemble"
    SWITCH = "Switch"


class Dependency(str, Enum):
    HARD = "Hard"
    SOFT = "Soft"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class InferenceStep(_Model):
    """One routing step: exactly one of ``serviceName``/``serviceUrl``/``nodeName``."""

    name: str | None = None
    node_name: str | None = Field(None, alias="nodeName")
    service_name: str | None = Field(None, alias="serviceName")
    service_url: str | None = Field(None, alias="serviceUrl")
    # KServe reads only the exact string "$response" (Sequence, not the first step); anything else
    # ("$response.predictions" included), or nothing, sends the node's own input ("$request").
    data: str | None = None
    weight: int | None = None  # Splitter only
    condition: str | None = None  # GJSON path (Go gjson semantics); matches when it exists
    dependency: Dependency | None = None  # unset behaves as Soft (only Hard is checked)
    map_predictions_to_instances: bool | None = Field(None, alias="mapPredictionsToInstances")

    @property
    def targets(self) -> list[str]:
        return [k for k, v in (("nodeName", self.node_name), ("serviceName", self.service_name),
                               ("serviceUrl", self.service_url)) if v]

    @property
    def is_hard(self) -> bool:
        return self.dependency == Dependency.HARD

    def label(self, index: int) -> str:
        """The step's name, or its index as KServe uses for an unnamed Ensemble step."""
        return self.name or str(index)


class InferenceRouter(_Model):
    router_type: RouterType = Field(alias="routerType")
    steps: list[InferenceStep] = Field(default_factory=list)


class RouterTimeouts(_Model):
    """Seconds. ``serviceClient`` is the HTTP client timeout of each call the router makes."""

    server_read: int | None = Field(None, alias="serverRead")
    server_write: int | None = Field(None, alias="serverWrite")
    server_idle: int | None = Field(None, alias="serverIdle")
    service_client: int | None = Field(None, alias="serviceClient")


class InferenceGraphSpec(_Model):
    nodes: dict[str, InferenceRouter]
    # Seconds to wait before timing out a request to the graph (KServe: the router's
    # Knative/ingress request timeout; the local router enforces it itself).
    timeout: int | None = None
    router_timeouts: RouterTimeouts | None = Field(None, alias="routerTimeouts")
    min_replicas: int | None = Field(None, alias="minReplicas")
    max_replicas: int | None = Field(None, alias="maxReplicas")
    scale_target: int | None = Field(None, alias="scaleTarget")
    scale_metric: Literal["cpu", "memory", "concurrency", "rps"] | None = Field(None, alias="scaleMetric")
    # Pod placement and resources of the router; kept as plain data (the local router ignores them).
    resources: dict[str, Any] | None = None
    affinity: dict[str, Any] | None = None
    tolerations: list[dict[str, Any]] | None = None
    node_selector: dict[str, str] | None = Field(None, alias="nodeSelector")
    node_name: str | None = Field(None, alias="nodeName")
    service_account_name: str | None = Field(None, alias="serviceAccountName")


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class InferenceGraph(_Model):
    api_version: Literal["serving.kserve.io/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["InferenceGraph"] = KIND
    metadata: ObjectMeta
    spec: InferenceGraphSpec
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def nodes(self) -> dict[str, InferenceRouter]:
        return self.spec.nodes

    def service_names(self) -> set[str]:
        return {s.service_name for n in self.nodes.values() for s in n.steps if s.service_name}

    def to_manifest(self) -> dict[str, Any]:
        """The object as Kubernetes JSON (camelCase, unset fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    # -- structural rules -------------------------------------------------------------------
    def validation_errors(self) -> list[str]:
        errors: list[str] = []
        name = self.name
        # -- KServe's admission webhook --
        if not GRAPH_NAME_RE.match(name):
            errors.append(f'graph name "{name}" must consist of lower case alphanumeric characters or '
                          f"'-' and start with a letter (regex {GRAPH_NAME_RE.pattern})")
        if ROOT_NODE not in self.nodes:
            errors.append("root node not found: an InferenceGraph needs a node named 'root' (its entry)")
        for node_name, node in self.nodes.items():
            seen: set[str] = set()
            for i, step in enumerate(node.steps):
                where = f'step {i} ("{step.name or ""}") of node "{node_name}"'
                if step.name:
                    if step.name in seen:
                        errors.append(f'node "{node_name}" has more than one step named "{step.name}"')
                    seen.add(step.name)
                targets = step.targets
                if not targets:
                    errors.append(f"{where} does not specify an inference target "
                                  "(one of nodeName, serviceName, serviceUrl)")
                elif len(targets) > 1:
                    errors.append(f"{where} specifies more than one of nodeName, serviceName, serviceUrl "
                                  f"({', '.join(targets)})")
            if node.router_type == RouterType.SPLITTER:
                missing = [s.label(i) for i, s in enumerate(node.steps) if s.weight is None]
                if missing:
                    errors.append(f'Splitter node "{node_name}": step(s) {", ".join(missing)} missing the weight')
                else:
                    total = sum(s.weight or 0 for s in node.steps)
                    if total != 100:
                        errors.append(f'Splitter node "{node_name}": the weights of its steps sum to {total}, '
                                      "they must sum to 100")
        # -- ours: graphs Go's router cannot serve, and conditions we would not read as Go does --
        for node_name, node in self.nodes.items():
            if node.router_type == RouterType.SEQUENCE and not node.steps:
                errors.append(f'[local] Sequence node "{node_name}" has no steps (Go\'s router answers it with '
                              "status 0: a panic that drops the connection)")
            for i, step in enumerate(node.steps):
                if step.condition:
                    try:
                        check_condition(step.condition)
                    except UnsupportedCondition as exc:
                        errors.append(f'[local] step {i} ("{step.name or ""}") of node "{node_name}": {exc} '
                                      "(the local router evaluates GJSON exactly as Go's gjson, or not at all)")
        cycle = self._find_cycle()
        if cycle:
            errors.append("[local] nodes form a cycle: " + " -> ".join(cycle)
                          + " (Go's router recurses until its stack overflows)")
        return errors

    def run_time_warnings(self) -> list[str]:
        """What KServe serves but only ever answers one way at run time (the router logs these)."""
        warnings: list[str] = []
        for node_name, node in self.nodes.items():
            if not node.steps:
                answer = {RouterType.ENSEMBLE: "200 {}", RouterType.SWITCH: "404/500 (no route matches)",
                          RouterType.SPLITTER: "500 (no route is selected)"}.get(node.router_type, "")
                warnings.append(f'node "{node_name}" has no steps: it answers {answer}')
            for i, step in enumerate(node.steps):
                where = f'step {i} ("{step.name or ""}") of node "{node_name}"'
                if step.node_name and step.node_name not in self.nodes:
                    warnings.append(f'{where} refers to unknown node "{step.node_name}": reaching it answers 500 '
                                    '"invalid route type: "')
                if step.data not in (None, DATA_REQUEST, DATA_RESPONSE):
                    warnings.append(f'{where}: data "{step.data}" is not "$response", so the step gets the '
                                    "node's input")
                if node.router_type == RouterType.SWITCH and not step.condition:
                    warnings.append(f'{where} has no condition: it matches only a body with the key ""')
                if node.router_type == RouterType.SEQUENCE and i == 0 and step.condition:
                    warnings.append(f"{where}: a condition on a Sequence's first step is checked against no "
                                    'response: every request answers 500 "invalid response"')
        return warnings

    def validate_graph(self, source: str | None = None) -> "InferenceGraph":
        errors = self.validation_errors()
        if errors:
            raise GraphValidationError(errors, source)
        return self

    def _find_cycle(self) -> list[str] | None:
        edges = {n: [s.node_name for s in r.steps if s.node_name and s.node_name in self.nodes]
                 for n, r in self.nodes.items()}
        state: dict[str, int] = {}  # 1 on the stack, 2 done
        stack: list[str] = []

        def visit(node: str) -> list[str] | None:
            state[node] = 1
            stack.append(node)
            for nxt in edges[node]:
                if state.get(nxt) == 1:
                    return stack[stack.index(nxt):] + [nxt]
                if nxt not in state:
                    found = visit(nxt)
                    if found:
                        return found
            stack.pop()
            state[node] = 2
            return None

        for start in sorted(edges):
            if start not in state:
                found = visit(start)
                if found:
                    return found
        return None


# -- loading ---------------------------------------------------------------------------------
def parse_graph(doc: Any, source: str | None = None, *, validate: bool = True) -> InferenceGraph:
    """An ``InferenceGraph`` from a parsed YAML/JSON document (structural rules checked)."""
    if not isinstance(doc, dict):
        raise GraphValidationError([f"the document must be a mapping, got {type(doc).__name__}"], source)
    try:
        graph = InferenceGraph.model_validate(doc)
    except ValidationError as exc:
        raise GraphValidationError(
            [f"{'.'.join(map(str, e['loc'])) or '<document>'}: {e['msg']}" for e in exc.errors()], source
        ) from None
    return graph.validate_graph(source) if validate else graph


def load_graph(path: str | Path, *, crd_dir: Path | None = DEFAULT_CRD_DIR,
               require_crd: bool = False) -> InferenceGraph:
    """Read and check a graph YAML. The CRD schema check runs when ``crd_dir`` holds the CRD
    (``require_crd=True`` makes its absence an error); the structural rules always run."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise GraphValidationError([f"not valid YAML: {exc}"], str(path)) from None
    if crd_dir is not None and (Path(crd_dir) / CRD_FILE).is_file():
        errors = crd_validation_errors(doc, crd_dir)
        if errors:
            raise GraphValidationError(errors, str(path))
    elif require_crd:
        raise FileNotFoundError(f"CRD {CRD_FILE} not found in {crd_dir}")
    return parse_graph(doc, str(path))


# -- the CRD ---------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def crd_schema(crd_dir: str | Path = DEFAULT_CRD_DIR, version: str = "v1alpha1") -> dict[str, Any]:
    """``openAPIV3Schema`` of the InferenceGraph CRD's ``version``."""
    crd = yaml.safe_load((Path(crd_dir) / CRD_FILE).read_text(encoding="utf-8"))
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise KeyError(f"{CRD_FILE} has no version {version}")


def crd_validation_errors(doc: Any, crd_dir: str | Path = DEFAULT_CRD_DIR, *,
                          strict_fields: bool = True) -> list[str]:
    """Schema errors of ``doc`` against the CRD (empty when valid). ``strict_fields`` also reports
    fields the schema does not declare, as the API server's strict field validation does."""
    schema = crd_schema(str(Path(crd_dir)))
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '<document>'}: {e.message}"
              for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
    if isinstance(doc, dict):
        if doc.get("apiVersion") != API_VERSION:
            errors.append(f"apiVersion: expected {API_VERSION}, got {doc.get('apiVersion')!r}")
        if doc.get("kind") != KIND:
            errors.append(f"kind: expected {KIND}, got {doc.get('kind')!r}")
    if strict_fields:
        errors += [f"{p}: unknown field (not in the CRD schema)" for p in _unknown_fields(doc, schema, "")]
    return errors


def _unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        # A bare `type: object` (metadata: ObjectMeta, checked by the API server itself) is not walked.
        for key, sub in value.items():
            where = f"{path}.{key}" if path else key
            if props is not None:
                if key in props:
                    found += _unknown_fields(sub, props[key], where)
                elif not isinstance(extra, dict):
                    found.append(where)
            elif isinstance(extra, dict):
                found += _unknown_fields(sub, extra, where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += _unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found
