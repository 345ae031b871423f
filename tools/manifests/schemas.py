"""Schema validation: built-in kinds with kubernetes-validate (strict), custom resources against the
openAPIV3Schema of their CRD in ../shared/crds, made strict (unknown fields rejected) by strict_schema.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tools.manifests.context import Context, ref

K8S_VERSION = "1.33.0"  # kind's and most managed clusters' current minor; kubernetes-validate ships its schemas


@functools.lru_cache(maxsize=None)
def _kubernetes_validate():
    """kubernetes_validate, with its schema files read once per process instead of once per object."""
    # kubernetes-validate is a test extra: imported only when the strict schemas are checked.
    import kubernetes_validate
    import kubernetes_validate.utils as utils

    if not hasattr(utils.schema_contents, "cache_info"):
        utils.schema_contents = functools.lru_cache(maxsize=None)(utils.schema_contents)
    return kubernetes_validate


def validate_builtin(obj: dict, version: str = K8S_VERSION) -> str | None:
    kubernetes_validate = _kubernetes_validate()
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(root)"
        return f"{where}: {exc.message}"
    except kubernetes_validate.utils.SchemaNotFoundError as exc:
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
