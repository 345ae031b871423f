"""The subset of kustomize that manifests/ uses, in pure Python, for machines without kubectl.

`kubectl kustomize` is preferred whenever it is on PATH (tools.validate_manifests picks it); this
module exists so that CI and laptops without kubectl can still build the overlays.
tests/manifests/test_kustomize_lite.py checks that both give the same objects.

Supported (anything else in a kustomization is refused with an error, never silently ignored):
- ``resources``: YAML files (multi-document) and directories holding a kustomization
- ``namespace``: set on every namespaced object (RoleBinding subjects are left alone, as in
  kustomize 5: write their namespace explicitly)
- ``labels``: ``pairs`` added to ``metadata.labels`` only (``includeSelectors``/``includeTemplates``
  must be false or absent); ``commonAnnotations``: added to ``metadata.annotations``
- ``images``: ``name`` -> ``newName`` / ``newTag`` / ``digest`` in every ``containers`` and
  ``initContainers`` list, at any depth (so InferenceService containers too, as kustomize does)
- ``patches``: ``path`` or inline ``patch``, optional ``target`` (kind, name regex, group,
  version, labelSelector ``k=v,...``). A YAML list is a JSON6902 patch (add/remove/replace/copy/
  move/test); a mapping is a strategic-merge patch, restricted to nested *mappings*: a list inside
  such a patch is refused, because kustomize merges lists by key for built-in kinds and, for
  custom resources, by guessed keys — use a JSON6902 patch to change a list
- ``configMapGenerator`` (``files`` as ``key=path`` or ``path``, ``literals``, ``behavior: create``)
  with ``generatorOptions.disableNameSuffixHash: true`` (hash suffixes are refused: they need
  name-reference rewriting inside custom resources, which this subset does not do)

Usage: ``python -m tools.kustomize_lite DIR`` prints the build like ``kubectl kustomize DIR``.
"""
from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "commonAnnotations",
                    "images", "patches", "configMapGenerator", "generatorOptions"}
# Kinds without a namespace (the ones a kustomization of ours could plausibly contain).
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "ClusterServingRuntime", "ClusterStorageContainer",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService", "IngressClass",
    "RuntimeClass", "CSIDriver", "VolumeAttachment", "ClusterIssuer", "GatewayClass",
}
# kustomize's "legacy" output order: these kinds first, in this order, then the rest by kind.
ORDER_FIRST = ["Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
               "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
               "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
               "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class KustomizeError(Exception):
    pass


def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def _load_docs(path: Path) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{path}: not valid YAML: {exc}") from None
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise KustomizeError(f"{path}: every document must be a Kubernetes object (kind, metadata)")
    return docs


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def build(directory: str | Path) -> list[dict]:
    """Build a kustomization directory into a list of objects (kustomize's legacy order)."""
    return _sort(_build(Path(directory)))


def _build(directory: Path) -> list[dict]:
    kfile = _kustomization_file(directory)
    kust = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(kust) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{kfile}: kustomize_lite does not support {', '.join(sorted(unknown))}")

    resources: list[dict] = []
    for entry in kust.get("resources") or []:
        path = directory / entry
        if path.is_dir():
            resources.extend(_build(path))
        elif path.is_file():
            # kustomize's load restrictor: plain files must live in or below the kustomization.
            if not _inside(path, directory):
                raise KustomizeError(f"{kfile}: resource {entry} is outside the kustomization root "
                                     "(only directories with a kustomization may be referenced above it)")
            resources.extend(_load_docs(path))
        else:
            raise KustomizeError(f"{kfile}: resource {entry} does not exist")

    resources.extend(_generate_configmaps(kust, directory, kfile))
    _check_unique(resources, kfile)

    for patch in kust.get("patches") or []:
        _apply_patch(resources, patch, directory, kfile)
    if kust.get("namespace"):
        for obj in resources:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kust["namespace"]
    for label in kust.get("labels") or []:
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise KustomizeError(f"{kfile}: labels with includeSelectors/includeTemplates are not supported")
        for obj in resources:
            obj["metadata"].setdefault("labels", {}).update(
                {str(k): str(v) for k, v in (label.get("pairs") or {}).items()})
    if kust.get("commonAnnotations"):
        for obj in resources:
            obj["metadata"].setdefault("annotations", {}).update(
                {str(k): str(v) for k, v in kust["commonAnnotations"].items()})
    for image in kust.get("images") or []:
        for obj in resources:
            _set_images(obj, image)
    return resources


def _check_unique(resources: list[dict], kfile: Path) -> None:
    seen = set()
    for obj in resources:
        key = (obj.get("apiVersion"), obj["kind"], obj["metadata"].get("namespace"), obj["metadata"].get("name"))
        if key in seen:
            raise KustomizeError(f"{kfile}: duplicate object {obj['kind']}/{obj['metadata'].get('name')}")
        seen.add(key)


# -- configMapGenerator --------------------------------------------------------------------------

def _generate_configmaps(kust: dict, directory: Path, kfile: Path) -> list[dict]:
    generators = kust.get("configMapGenerator") or []
    if generators and not (kust.get("generatorOptions") or {}).get("disableNameSuffixHash"):
        raise KustomizeError(f"{kfile}: set generatorOptions.disableNameSuffixHash: true "
                             "(kustomize_lite does not rewrite hashed names)")
    out = []
    for gen in generators:
        if gen.get("behavior", "create") != "create":
            raise KustomizeError(f"{kfile}: configMapGenerator behavior {gen['behavior']!r} is not supported")
        data: dict[str, str] = {}
        for spec in gen.get("files") or []:
            key, _, rel = spec.partition("=") if "=" in spec else (Path(spec).name, "", spec)
            path = directory / rel
            if not path.is_file() or not _inside(path, directory):
                raise KustomizeError(f"{kfile}: configMapGenerator file {rel} missing or outside the kustomization")
            data[key] = path.read_text(encoding="utf-8")
        for literal in gen.get("literals") or []:
            key, sep, value = literal.partition("=")
            if not sep:
                raise KustomizeError(f"{kfile}: literal {literal!r} is not KEY=VALUE")
            data[key] = value
        meta: dict[str, Any] = {"name": gen["name"]}
        if gen.get("namespace"):
            meta["namespace"] = gen["namespace"]
        labels = {**(kust.get("generatorOptions") or {}).get("labels", {}), **(gen.get("options") or {}).get("labels", {})}
        if labels:
            meta["labels"] = labels
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(sorted(data.items()))})
    return out


# -- images --------------------------------------------------------------------------------------

def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """(name, tag, digest) of an image reference; a registry port is not mistaken for a tag."""
    name, _, digest = ref.partition("@")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def _set_images(node: Any, image: dict) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        container["image"] = _retag(container["image"], image)
            _set_images(value, image)
    elif isinstance(node, list):
        for item in node:
            _set_images(item, image)


def _retag(ref: str, image: dict) -> str:
    name, tag, digest = split_image(ref)
    if name != image["name"]:
        return ref
    name = image.get("newName", name)
    if image.get("digest"):
        return f"{name}@{image['digest']}"
    if image.get("newTag") is not None:
        return f"{name}:{image['newTag']}"
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


# -- patches -------------------------------------------------------------------------------------

def _apply_patch(resources: list[dict], spec: dict, directory: Path, kfile: Path) -> None:
    if "path" in spec:
        path = directory / spec["path"]
        if not path.is_file() or not _inside(path, directory):
            raise KustomizeError(f"{kfile}: patch {spec['path']} missing or outside the kustomization")
        text, where = path.read_text(encoding="utf-8"), str(path)
    elif "patch" in spec:
        text, where = spec["patch"], f"{kfile} (inline patch)"
    else:
        raise KustomizeError(f"{kfile}: a patch needs path or patch")
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KustomizeError(f"{where}: not valid YAML: {exc}") from None
    target = spec.get("target")
    if isinstance(body, list):
        if not target:
            raise KustomizeError(f"{where}: a JSON6902 patch needs a target")
        matched = _select(resources, target)
        if not matched:
            raise KustomizeError(f"{where}: target {target} matches no object")
        for obj in matched:
            try:
                new = _json6902(obj, body)
            except KustomizeError as exc:
                raise KustomizeError(f"{where}: {obj['kind']}/{obj['metadata']['name']}: {exc}") from None
            obj.clear()
            obj.update(new)
        return
    if not isinstance(body, dict):
        raise KustomizeError(f"{where}: a patch is a JSON6902 list or a strategic-merge mapping")
    _no_lists(body, where, "")
    if target:
        matched = _select(resources, target)
    else:
        name = (body.get("metadata") or {}).get("name")
        matched = [o for o in resources if o["kind"] == body.get("kind") and o["metadata"].get("name") == name]
    if not matched:
        raise KustomizeError(f"{where}: patch matches no object")
    for obj in matched:
        merged = _merge(obj, _without_identity(body))
        obj.clear()
        obj.update(merged)


def _without_identity(body: dict) -> dict:
    out = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    if isinstance(out.get("metadata"), dict):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k not in ("name", "namespace")}
    return out


def _no_lists(node: Any, where: str, path: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _no_lists(value, where, f"{path}/{key}")
    elif isinstance(node, list):
        raise KustomizeError(f"{where}: strategic-merge patch sets a list at {path}; "
                             "kustomize_lite only merges mappings: use a JSON6902 patch for lists")


def _merge(base: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


def _select(resources: list[dict], target: dict) -> list[dict]:
    unknown = set(target) - {"kind", "name", "group", "version", "labelSelector", "namespace"}
    if unknown:
        raise KustomizeError(f"patch target field(s) {', '.join(sorted(unknown))} not supported")
    out = []
    for obj in resources:
        group, _, version = obj.get("apiVersion", "").rpartition("/")
        meta = obj["metadata"]
        if "kind" in target and obj["kind"] != target["kind"]:
            continue
        if "group" in target and group != target["group"]:
            continue
        if "version" in target and version != target["version"]:
            continue
        if "name" in target and not re.fullmatch(target["name"], meta.get("name", "")):
            continue
        if "namespace" in target and meta.get("namespace") != target["namespace"]:
            continue
        if "labelSelector" in target:
            labels = meta.get("labels") or {}
            wanted = dict(p.split("=", 1) for p in target["labelSelector"].split(",") if p)
            if any(labels.get(k) != v for k, v in wanted.items()):
                continue
        out.append(obj)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KustomizeError(f"path {path} does not exist")
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise KustomizeError(f"path {path} does not exist")


def _json6902(obj: dict, ops: list[dict]) -> dict:
    doc = copy.deepcopy(obj)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        parts = _pointer(path)
        if not parts:
            raise KustomizeError("a JSON6902 operation on the whole document is not supported")
        if kind == "test":
            if _get(doc, path) != op.get("value"):
                raise KustomizeError(f"test failed at {path}")
            continue
        if kind in ("copy", "move"):
            value = copy.deepcopy(_get(doc, op["from"]))
            if kind == "move":
                _remove(doc, op["from"])
            _add(doc, parts, path, value)
            continue
        if kind == "add":
            _add(doc, parts, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            parent = _parent(doc, parts, path)
            last = parts[-1]
            parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op.get("value"))
        else:
            raise KustomizeError(f"unknown JSON6902 op {kind!r}")
    return doc


def _add(doc: Any, parts: list[str], path: str, value: Any) -> None:
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise KustomizeError(f"bad list index in {path}")
    else:
        raise KustomizeError(f"path {path} does not exist")


def _remove(doc: Any, path: str) -> None:
    parts = _pointer(path)
    _get(doc, path)
    parent = _parent(doc, parts, path)
    if isinstance(parent, list):
        parent.pop(int(parts[-1]))
    else:
        del parent[parts[-1]]


# -- output --------------------------------------------------------------------------------------

def _sort(resources: list[dict]) -> list[dict]:
    def key(obj: dict):
        kind = obj["kind"]
        if kind in ORDER_FIRST:
            rank = (0, ORDER_FIRST.index(kind), "")
        elif kind in ORDER_LAST:
            rank = (2, ORDER_LAST.index(kind), "")
        else:
            group, _, version = obj.get("apiVersion", "").rpartition("/")
            rank = (1, 0, f"{group or '~G'}_{version}_{kind}")  # kustomize's gvk.String() order
        return (*rank, obj["metadata"].get("namespace") or "", obj["metadata"].get("name") or "")
    return sorted(resources, key=key)


def dump(resources: list[dict]) -> str:
    return "---\n".join(yaml.safe_dump(obj, sort_keys=True, allow_unicode=True) for obj in resources)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tools.kustomize_lite DIR", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(dump(build(args[0])))
    except KustomizeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
