"""naviyam.checkout: the deployment shells run from the checkout, not from site-packages."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from naviyam.checkout import CheckoutNotFoundError, checkout_root, run_shell, shell_command

ROOT = Path(__file__).resolve().parents[1]


def test_the_checkout_is_the_folder_above_the_package():
    assert checkout_root() == ROOT
    assert (checkout_root() / "pipelines" / "__init__.py").is_file()


def test_a_package_without_its_checkout_says_how_to_get_one(tmp_path):
    (tmp_path / "site-packages" / "naviyam").mkdir(parents=True)
    with pytest.raises(CheckoutNotFoundError, match="not in a checkout.*pip install -e"):
        checkout_root(tmp_path / "site-packages" / "naviyam")


def test_only_shell_modules_are_run():
    with pytest.raises(ValueError, match="not in a deployment shell"):
        shell_command("naviyam.cli")


def test_the_shells_are_not_installed(tmp_path):
    """From anywhere but the checkout's root, `import pipelines` finds nothing installed."""
    code = "import importlib.util as u; print([m for m in ('components', 'pipelines', 'inference_graph') if u.find_spec(m)])"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]


def test_a_shell_runs_from_any_working_directory(tmp_path, monkeypatch):
    """What `naviyam pipeline compile --out DIR` does from outside the checkout."""
    monkeypatch.chdir(tmp_path)
    assert run_shell("pipelines.compile", ["--out", "ir"]) == 0
    assert sorted(p.name for p in (tmp_path / "ir").iterdir()) == ["canary.yaml", "drift.yaml", "retrain.yaml"]
