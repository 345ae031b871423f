"""Repository facts the manifests are checked against (parsed, never imported: kserve.model_server
parses sys.argv on import): COMPONENTS, FANOUT, the runnable component modules, the Dockerfiles.
"""
from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # tools/manifests/repo.py -> the checkout


@dataclass
class Dockerfile:
    path: Path
    stages: int
    base_images: list[str]
    entrypoint: list[str] | None
    cmd: list[str] | None
    user: str | None
    text: str
    env: dict[str, str] = field(default_factory=dict)  # the final stage's ENV


@dataclass
class Repo:
    root: Path
    manifests: Path
    docker: Path
    crds: Path
    graph_file: Path
    components: tuple[str, ...] = ()
    fanout: tuple[str, ...] = ()
    runnable_component_modules: set[str] = field(default_factory=set)
    dockerfiles: dict[str, Dockerfile] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path, manifests: Path | None = None, docker: Path | None = None,
             crds: Path | None = None, graph_file: Path | None = None) -> "Repo":
        root = root.resolve()
        repo = cls(root=root, manifests=(manifests or root / "manifests").resolve(),
                   docker=(docker or root / "dockerfiles").resolve(),
                   crds=(crds or root.parent / "shared" / "crds").resolve(),
                   graph_file=(graph_file or root / "inference_graph" / "naviyam.yaml").resolve())
        repo.components = tuple(_module_constant(root / "components" / "server.py", "COMPONENTS"))
        repo.fanout = tuple(_module_constant(root / "components" / "ranker_transformer.py", "FANOUT"))
        for path in sorted((root / "components").glob("*.py")):
            if _is_runnable(path):
                repo.runnable_component_modules.add(f"components.{path.stem}")
        if repo.docker.is_dir():
            for path in sorted(repo.docker.glob("*.Dockerfile")):
                repo.dockerfiles[path.name.removesuffix(".Dockerfile")] = parse_dockerfile(path)
        return repo

    def module_file(self, module: str) -> Path | None:
        base = self.root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None


def _module_constant(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise SystemExit(f"{path}: no top-level {name} constant")


def _is_runnable(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return path.name == "__main__.py" or re.search(r"if\s+__name__\s*==\s*['\"]__main__['\"]", text) is not None


def parse_dockerfile(path: Path) -> Dockerfile:
    text = path.read_text(encoding="utf-8")
    logical, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    args: dict[str, str] = {}
    stages, bases = 0, []
    entrypoint = cmd = user = None
    env: dict[str, str] = {}
    for line in logical:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "ARG" and stages == 0:
            key, _, value = rest.strip().partition("=")
            args[key] = value
        elif instr == "FROM":
            stages += 1
            image = rest.split()[0]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
            bases.append(image)
            entrypoint = cmd = user = None  # the final stage's values win
            env = {}
        elif instr in ("ENTRYPOINT", "CMD"):
            try:
                value = json.loads(rest)
            except ValueError:
                value = ["/bin/sh", "-c", rest]  # shell form
            if instr == "ENTRYPOINT":
                entrypoint = value
            else:
                cmd = value
        elif instr == "USER":
            user = rest.strip()
        elif instr == "ENV":
            for token in shlex.split(rest):
                key, sep, value = token.partition("=")
                if sep:
                    env[key] = value
    return Dockerfile(path, stages, bases, entrypoint, cmd, user, text, env)


# ==================================================================================================
# Building
