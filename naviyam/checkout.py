"""The repository checkout the installed ``naviyam`` package belongs to, and its deployment shells.

Only ``naviyam`` is installed. ``components/``, ``inference_graph/`` and ``pipelines/`` are
folders of the checkout (and of every image's ``/app``), run as ``python -m pipelines.run`` from
its root, where ``python -m`` puts them on ``sys.path``. A console script such as
``.venv/bin/naviyam`` starts from anywhere, so ``naviyam pipeline ...`` runs the shell from the
checkout here: a child ``python -m <shell module>`` with the checkout first on ``PYTHONPATH``
(this process's ``sys.path`` and working directory stay as they are, and relative paths in the
arguments keep meaning what the caller meant).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import naviyam

SHELLS = ("components", "inference_graph", "pipelines")


class CheckoutNotFoundError(RuntimeError):
    """``naviyam`` is installed without the repository beside it (a wheel, an image's site-packages)."""


def checkout_root(package_dir: Path | None = None) -> Path:
    """The folder above the ``naviyam`` package when it holds the shells (``pipelines/``...)."""
    package_dir = Path(package_dir or Path(naviyam.__file__).parent).resolve()
    root = package_dir.parent
    missing = [shell for shell in SHELLS if not (root / shell / "__init__.py").is_file()]
    if missing:
        raise CheckoutNotFoundError(
            f"naviyam at {package_dir} is not in a checkout of the repository ({', '.join(missing)} missing "
            f"from {root}): the deployment shells are not installed. Install it editable from a checkout "
            "(pip install -e .) or run `python -m pipelines.run ...` from the repository root.")
    return root


def shell_command(module: str, argv: Sequence[str] = (), root: Path | None = None) -> tuple[list[str], dict]:
    """The command line and environment that run ``python -m module argv`` from the checkout."""
    if module.split(".")[0] not in SHELLS:
        raise ValueError(f"{module} is not in a deployment shell ({', '.join(SHELLS)})")
    root = root or checkout_root()
    paths = [str(root), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return [sys.executable, "-m", module, *argv], {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def run_shell(module: str, argv: Sequence[str] = ()) -> int:
    """Runs a shell module's command line (e.g. ``pipelines.run retrain --local``); its exit code."""
    command, env = shell_command(module, argv)
    return subprocess.run(command, env=env, check=False).returncode
