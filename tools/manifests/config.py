"""The naviyam-config ConfigMap: known Settings keys (naviyam/config.py), in-cluster service URLs,
NAVIYAM_CONFIG mounts and NAVIYAM_* environment variables.
"""
from __future__ import annotations

import yaml
from pydantic import BaseModel

from naviyam.config import Settings
from tools.manifests.context import Context, containers, image_basename, workloads

# NAVIYAM_* variables that are not Settings fields (read by naviyam.features.store / config.py).
NON_SETTINGS_ENV = {"NAVIYAM_CONFIG", "NAVIYAM_FEAST_PROFILE", "NAVIYAM_FEATURE_REPO"}
CONFIG_MAP = "naviyam-config"
CONFIG_KEY = "config.yaml"


def _settings_fields() -> dict:
    """Settings' field tree {name: subtree or None}."""
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
    def walk(node: dict, tree: dict, prefix: str) -> None:
        for key, value in node.items():
            if key not in tree:
                ctx.error(f"ConfigMap/{CONFIG_MAP}", f"unknown setting {prefix}{key} (naviyam/config.py)")
            elif isinstance(value, dict) and tree[key] is not None:
                walk(value, tree[key], f"{prefix}{key}.")
    fields = _settings_fields()
    walk(settings, fields, "")
    try:
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
