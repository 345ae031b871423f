"""tools/build_images.sh: one image per Dockerfile, and a loud (but successful) no-op without an engine."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "build_images.sh"


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_lists_one_image_per_dockerfile():
    proc = run("--list")
    assert proc.returncode == 0
    assert proc.stdout.split() == sorted(p.name.removesuffix(".Dockerfile") for p in (ROOT / "dockerfiles").glob("*.Dockerfile"))


def test_without_an_engine_it_says_so_and_exits_zero():
    proc = run(CONTAINER_ENGINE="none")
    assert proc.returncode == 0
    assert "NO CONTAINER ENGINE: nothing was built" in proc.stdout
    assert "NO CONTAINER ENGINE" in proc.stderr


def test_require_engine_turns_that_into_a_failure():
    assert run("--require-engine", CONTAINER_ENGINE="none").returncode == 3


def test_dry_run_builds_every_image_from_a_clean_context():
    proc = run("--dry-run", "--tag", "0.1.0", "--registry", "registry.example.com/naviyam",
               "--gpu", "https://download.pytorch.org/whl/cuXXX", CONTAINER_ENGINE="docker")
    assert proc.returncode == 0, proc.stderr
    builds = [line for line in proc.stdout.splitlines() if line.startswith("+ docker build")]
    names = run("--list").stdout.split()
    assert len(builds) == len(names) + 2  # + the -gpu variants of nlu and nlg
    for name in names:
        assert any(f"registry.example.com/naviyam/{name}:0.1.0 " in b for b in builds), name
    assert any("naviyam-nlg:0.1.0-gpu" in b and "TORCH_INDEX_URL=" in b for b in builds)
    assert all("naviyam-image-context" in b for b in builds)  # never the checkout itself


def test_every_image_and_the_build_context_carry_every_package():
    # pyproject packages all four; an image missing one fails at import on the cluster only
    # (the ranker transformer and the feedback service import inference_graph).
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted(p.rstrip("*") for p in include)
    context = next(line for line in SCRIPT.read_text().splitlines() if "requirements.lock naviyam" in line)
    for pkg in packages:
        assert f" {pkg} " in f" {context} ", f"tools/build_images.sh leaves {pkg} out of the build context"
        for dockerfile in (ROOT / "dockerfiles").glob("*.Dockerfile"):
            assert f"COPY {pkg} /src/{pkg}\n" in dockerfile.read_text(), f"{dockerfile.name} does not copy {pkg}"
