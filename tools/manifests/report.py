"""Running the checks: one overlay into a Context, every overlay (plus the repository-level checks)
into a Report of errors and notes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tools.manifests.build import BuildError, build_overlay
from tools.manifests.config import check_config
from tools.manifests.context import Context
from tools.manifests.images import check_coverage, check_dockerfiles, check_images_and_commands
from tools.manifests.kserve import check_graph, check_graph_copy, check_knative, check_mode_canary_autoscaling
from tools.manifests.network import check_network
from tools.manifests.repo import Repo
from tools.manifests.schemas import K8S_VERSION, check_schemas
from tools.manifests.security import check_rbac, check_secrets, check_security
from tools.manifests.state import check_state
from tools.manifests.structure import check_jobs, check_pdbs, check_structure


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
