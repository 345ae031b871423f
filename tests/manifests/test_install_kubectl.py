"""tools/install_kubectl: the pinned wheel's kubectl lands in the venv, runs, and a second install is a no-op."""
from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import install_kubectl as ik  # noqa: E402
from tools import validate_manifests as vm  # noqa: E402

pytestmark = pytest.mark.skipif(not ik.supported_platform(), reason="the pinned wheel's kubectl is linux/amd64 only")


def test_the_installed_wheel_is_the_pinned_one():
    pinned = ik.pinned_requirement()
    assert pinned.startswith(f"{ik.DIST}==")
    assert importlib.metadata.version(ik.DIST) == pinned.split("==", 1)[1], "run `make venv`"


def test_install_is_idempotent_and_the_binary_runs(tmp_path: Path):
    target = tmp_path / "bin" / "kubectl"
    assert ik.install_binary(target) is True
    assert ik.install_binary(target) is False
    versions = ik.client_version(target)
    assert versions["kubectl"].startswith("v1.35.")
    assert versions["kustomize"].startswith("v5.")
    target.write_bytes(b"not kubectl")
    assert ik.install_binary(target) is True  # a damaged copy is replaced
    assert ik.client_version(target) == versions


def test_make_installs_it_and_the_validator_uses_it():
    stamp_recipe = (ROOT / "Makefile").read_text().split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    assert "-m tools.install_kubectl" in stamp_recipe
    if ik.venv_kubectl().exists():
        assert vm.find_kubectl() == str(ik.venv_kubectl())
