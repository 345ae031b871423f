"""Building an overlay: `kubectl kustomize` with the venv's kubectl (else the first on PATH), loaded as YAML."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml


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
