"""The `sandbox` fixture: copies of manifests/ and dockerfiles/ in tmp_path, to break one thing at a time.

Building needs kubectl (`make venv` installs the pinned one into .venv/bin): where it is missing on
linux/amd64 the tests fail with the validator's "no kubectl" error; elsewhere, where the pinned
binary cannot run, they skip unless a kubectl is on PATH.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import install_kubectl  # noqa: E402
from tools import validate_manifests as vm  # noqa: E402


def require_kubectl() -> None:
    if vm.find_kubectl() is None and not install_kubectl.supported_platform():
        pytest.skip("no kubectl on PATH, and the pinned wheel's kubectl is linux/amd64 only")


class Sandbox:
    """Copies of manifests/ and dockerfiles/ under tmp_path; the rest of the repository is the real one."""

    def __init__(self, tmp: Path):
        self.manifests = tmp / "manifests"
        self.docker = tmp / "dockerfiles"
        shutil.copytree(ROOT / "manifests", self.manifests)
        shutil.copytree(ROOT / "dockerfiles", self.docker)

    def path(self, rel: str) -> Path:
        return self.manifests / rel

    def edit(self, rel: str, old: str, new: str, count: int = 1) -> None:
        path = self.path(rel)
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    def append(self, rel: str, text: str) -> None:
        path = self.path(rel)
        path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")

    def validate(self, overlays: list[str] | None = None, crds: Path | None = None) -> vm.Report:
        repo = vm.Repo.load(ROOT, manifests=self.manifests, docker=self.docker, crds=crds)
        return vm.validate(repo, overlays)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    require_kubectl()
    return Sandbox(tmp_path)


@pytest.fixture
def kubectl() -> None:
    require_kubectl()
