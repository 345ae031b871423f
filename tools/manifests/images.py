"""Images and commands: every container's image and the process it runs (components.server,
components.feedback, `python -c` code), component coverage, and the repository's Dockerfiles.
"""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from tools.manifests.config import CONFIG_MAP
from tools.manifests.context import (Context, Workload, arg_value, containers, effective_argv, image_basename,
                                     image_name, workloads)
from tools.manifests.repo import Repo, _is_runnable

MODEL_SERVER_PORT = 8080  # KServe's convention for custom containers (and Knative's $PORT)
# Runnable modules in components/ that are laptop tools, not deployed components.
DEV_ONLY_MODULES = {"components.local_stack", "components.bench", "components.demo"}
FEEDBACK_MODULE = "components.feedback"
SERVER_MODULE = "components.server"
# The deployment shells: folders of the checkout, copied into every image's /app (not installed).
SHELLS = ("components", "inference_graph", "pipelines")
# Images not built from dockerfiles/: pinned third-party images the manifests may use.
THIRD_PARTY_IMAGES = {"redis", "postgres"}
# Flags of kserve.model_server.parser (kserve 0.21) that a model-server container may pass, plus
# components.server's own --component. tests/manifests checks this list against the installed kserve.
KSERVE_SERVER_FLAGS = {
    "--http_port", "--grpc_port", "--workers", "--max_threads", "--max_asyncio_workers", "--enable_grpc",
    "--enable_docs_url", "--enable_latency_logging", "--configure_logging", "--log_config_file",
    "--access_log_format", "--event-loop", "--timeout-keep-alive", "--model_name", "--predictor_host",
    "--protocol", "--predictor_protocol", "--predictor_use_ssl", "--predictor_request_timeout_seconds",
    "--grpc_max_send_message_length", "--grpc_max_receive_message_length", "--predictor_request_retries",
    "--enable_predictor_health_check", "--ssl_certfile", "--ssl_keyfile",
}
SERVER_FLAGS = KSERVE_SERVER_FLAGS | {"--component"}


def check_images_and_commands(ctx: Context) -> dict[str, list[tuple[Workload, str]]]:
    """Returns {component: [(workload, container path)]} for the coverage check."""
    repo = ctx.repo
    runs: dict[str, list[tuple[Workload, str]]] = {}
    used_dockerfiles = set()
    for wl in workloads(ctx.docs):
        if wl.pod is None:
            continue
        for where, c in containers(wl.pod):
            loc = f"{wl.ref} {where} ({c.get('name')})"
            image = c.get("image")
            if not image:
                ctx.error(loc, "no image")
                continue
            name, tag, digest = image_name(image)
            base = image_basename(image)
            if not tag and not digest:
                ctx.error(loc, f"image {image} has no tag or digest (that is :latest)")
            if tag == "latest":
                ctx.error(loc, f"image {image}: :latest is not a pinned tag")
            dockerfile = repo.dockerfiles.get(base)
            if dockerfile is None:
                if base in THIRD_PARTY_IMAGES:
                    if tag and not re.search(r"\d", tag):
                        ctx.error(loc, f"third-party image {image}: pin a version tag")
                    continue
                ctx.error(loc, f"image {image}: no Dockerfile dockerfiles/{base}.Dockerfile (and not an "
                               f"allow-listed third-party image: {', '.join(sorted(THIRD_PARTY_IMAGES))})")
                continue
            used_dockerfiles.add(base)
            argv = effective_argv(c, dockerfile)
            if argv is None:
                ctx.error(loc, f"cannot tell what it runs: no command and dockerfiles/{base}.Dockerfile has no ENTRYPOINT")
                continue
            component = check_command(ctx, wl, loc, c, argv)
            if component:
                runs.setdefault(component, []).append((wl, where))
                if base != component:
                    ctx.error(loc, f"runs {component} from image {base}: the image of a component is "
                                   f"named after it (dockerfiles/{component}.Dockerfile)")
    for base in sorted(set(repo.dockerfiles) - used_dockerfiles):
        ctx.error(f"dockerfiles/{base}.Dockerfile", "image is not used by any object of this overlay")
    return runs


def check_command(ctx: Context, wl: Workload, loc: str, c: dict, argv: list[str]) -> str | None:
    """Check the process; return the component it runs (COMPONENTS name or 'naviyam-feedback')."""
    repo = ctx.repo
    if not argv or Path(argv[0]).name not in ("python", "python3", "python3.11"):
        ctx.error(loc, f"runs {shlex.join(argv)}: not a Python module of this repository")
        return None
    rest = argv[1:]
    if rest[:1] == ["-c"] and len(rest) > 1:
        check_python_code(ctx, loc, rest[1])
        return None
    if rest[:1] != ["-m"] or len(rest) < 2:
        ctx.error(loc, f"runs {shlex.join(argv)}: expected `python -m MODULE` or `python -c CODE`")
        return None
    module, flags = rest[1], rest[2:]
    path = repo.module_file(module)
    if path is None:
        ctx.error(loc, f"python -m {module}: no such module in the repository")
        return None
    entry = path.with_name("__main__.py") if path.name == "__init__.py" else path
    if not entry.is_file() or not _is_runnable(entry):
        ctx.error(loc, f"python -m {module}: the module has no `if __name__ == \"__main__\"` entry point")
        return None
    if module == SERVER_MODULE:
        return check_model_server(ctx, wl, loc, c, flags)
    if module == FEEDBACK_MODULE:
        check_feedback(ctx, wl, loc, c, flags)
        return "naviyam-feedback"
    if module in DEV_ONLY_MODULES:
        ctx.error(loc, f"python -m {module}: a laptop tool, not a deployable component")
    return None


def check_model_server(ctx: Context, wl: Workload, loc: str, c: dict, flags: list[str]) -> str | None:
    repo = ctx.repo
    for flag in flags:
        if flag.startswith("--") and flag.split("=", 1)[0] not in SERVER_FLAGS:
            ctx.error(loc, f"components.server does not take {flag} (not a kserve.model_server flag)")
    if wl.kind != "InferenceService":
        ctx.error(loc, "components.server is a KServe model server: run it as an InferenceService component")
        return None
    isvc_name = wl.name
    model_name = arg_value(flags, "--model_name")
    component = arg_value(flags, "--component")
    if model_name is None:
        if wl.isvc_component == "transformer":
            model_name = isvc_name  # KServe appends --model_name <isvc> to a custom transformer
        else:
            ctx.error(loc, "components.server needs --model_name (KServe only adds it to transformers)")
            return None
    if model_name != isvc_name:
        ctx.error(loc, f"--model_name {model_name} differs from the InferenceService name {isvc_name}: "
                       f"KServe, the graph and serving.service_urls address /v1/models/{isvc_name}")
    effective = component or model_name
    if effective not in repo.components:
        what = f"--component {component}" if component else f"--model_name {model_name} (no --component)"
        ctx.error(loc, f"{what} is not one of components/server.py COMPONENTS: {', '.join(repo.components)}")
        return None
    expected_slot = "transformer" if effective.endswith("-transformer") else "predictor"
    if wl.isvc_component != expected_slot:
        ctx.error(loc, f"{effective} must be the InferenceService's {expected_slot}, not its {wl.isvc_component}")
    port = arg_value(flags, "--http_port")
    if port is not None and port != str(MODEL_SERVER_PORT):
        ctx.error(loc, f"--http_port {port}: KServe routes to {MODEL_SERVER_PORT}")
    if wl.isvc_component == "transformer":
        if arg_value(flags, "--predictor_host") is not None:
            ctx.error(loc, "--predictor_host is set by KServe (<isvc>-predictor.<namespace>, canary-aware): "
                           "do not hard-code it")
        if arg_value(flags, "--predictor_protocol") != "v2":
            ctx.error(loc, "the ranker transformer sends open-inference (v2) requests to its predictor: "
                           "pass --predictor_protocol v2")
        timeout = arg_value(flags, "--predictor_request_timeout_seconds")
        serving = (ctx.settings or {}).get("serving") or {}
        if timeout is not None and "predictor_timeout_s" in serving:
            want = max(1, round(float(serving["predictor_timeout_s"])))
            if str(want) != timeout:
                ctx.error(loc, f"--predictor_request_timeout_seconds {timeout} disagrees with "
                               f"serving.predictor_timeout_s ({serving['predictor_timeout_s']} -> {want})")
    check_model_server_container(ctx, wl, loc, c)
    return effective


def check_model_server_container(ctx: Context, wl: Workload, loc: str, c: dict) -> None:
    if c.get("name") != "kserve-container":
        ctx.error(loc, "the model-server container of a custom InferenceService component must be named "
                       "kserve-container (KServe finds it by that name)")
    ports = c.get("ports") or []
    if [p.get("containerPort") for p in ports] != [MODEL_SERVER_PORT]:
        ctx.error(loc, f"model servers expose exactly one port, {MODEL_SERVER_PORT}: got "
                       f"{[p.get('containerPort') for p in ports]}")
    for p in ports:
        if p.get("name") not in (None, "http1", "h2c"):
            ctx.error(loc, f"port name {p.get('name')!r}: Knative accepts only http1 or h2c")
    ready = ((c.get("readinessProbe") or {}).get("httpGet") or {})
    live = ((c.get("livenessProbe") or {}).get("httpGet") or {})
    want_ready = f"/v2/models/{wl.name}/ready"
    if ready.get("path") != want_ready or ready.get("port") not in (MODEL_SERVER_PORT, "http1"):
        ctx.error(loc, f"readinessProbe must be httpGet {want_ready} on port {MODEL_SERVER_PORT}, got {ready or None}")
    if live.get("path") != "/v2/health/live" or live.get("port") not in (MODEL_SERVER_PORT, "http1"):
        ctx.error(loc, f"livenessProbe must be httpGet /v2/health/live on port {MODEL_SERVER_PORT}, got {live or None}")


def check_feedback(ctx: Context, wl: Workload, loc: str, c: dict, flags: list[str]) -> None:
    port = arg_value(flags, "--port")
    if port is None:
        ctx.error(loc, "components.feedback needs an explicit --port (its default comes from settings)")
        return
    names = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    if int(port) not in names.values():
        ctx.error(loc, f"--port {port} is not a containerPort ({sorted(v for v in names.values() if v)})")
    serving = (ctx.settings or {}).get("serving") or {}
    configured = (serving.get("ports") or {}).get("naviyam-feedback")
    if configured is not None and str(configured) != port:
        ctx.error(loc, f"--port {port} differs from serving.ports.naviyam-feedback ({configured}) in {CONFIG_MAP}")
    for probe in ("readinessProbe", "livenessProbe"):
        get = ((c.get(probe) or {}).get("httpGet") or {})
        p = get.get("port")
        p = names.get(p, p)
        if get.get("path") != "/healthz" or str(p) != port:
            ctx.error(loc, f"{probe} must be httpGet /healthz on port {port}, got {get or None}")
    if wl.kind != "Deployment":
        ctx.error(loc, "the feedback service runs as a Deployment")


def check_python_code(ctx: Context, loc: str, code: str) -> None:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        ctx.error(loc, f"python -c: syntax error: {exc}")
        return
    imported: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("naviyam", "components"):
            path = ctx.repo.module_file(node.module)
            if path is None:
                ctx.error(loc, f"python -c: from {node.module} import ...: no such module")
                continue
            defined = _top_level_names(path)
            for alias in node.names:
                if alias.name not in defined and ctx.repo.module_file(f"{node.module}.{alias.name}") is None:
                    ctx.error(loc, f"python -c: {node.module} has no {alias.name}")
                else:
                    imported[alias.asname or alias.name] = (node.module, alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported:
            module, name = imported[node.func.id]
            params = _function_params(ctx.repo.module_file(module), name)
            if params is None:
                continue
            names, has_kwargs = params
            for kw in node.keywords:
                if kw.arg and kw.arg not in names and not has_kwargs:
                    ctx.error(loc, f"python -c: {module}.{name}() has no parameter {kw.arg!r}")


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _function_params(path: Path | None, name: str) -> tuple[set[str], bool] | None:
    if path is None:
        return None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            a = node.args
            names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
            return names, a.kwarg is not None
    return None


def check_coverage(ctx: Context, runs: dict[str, list[tuple[Workload, str]]]) -> None:
    repo = ctx.repo
    for component in (*repo.components, "naviyam-feedback"):
        found = runs.get(component, [])
        if not found:
            ctx.error(f"component {component}", "has no manifest: no container of this overlay runs it "
                                                "(components/server.py COMPONENTS + the feedback service)")
        elif len(found) > 1 and component != "naviyam-feedback":
            ctx.error(f"component {component}", f"runs in several places: {[w.ref for w, _ in found]}")
    deployed = {SERVER_MODULE, FEEDBACK_MODULE}
    for module in sorted(repo.runnable_component_modules - deployed - DEV_ONLY_MODULES):
        ctx.error(f"components/{module.split('.')[-1]}.py", "is runnable but neither deployed by a manifest "
                  "nor declared dev-only (tools/manifests/images.py DEV_ONLY_MODULES)")


def check_dockerfiles(repo: Repo) -> list[str]:
    """Repository-level checks of dockerfiles/ (independent of the overlay)."""
    errors = []
    if not repo.dockerfiles:
        return [f"{repo.docker}: no *.Dockerfile"]
    for component in (*repo.components, "naviyam-feedback"):
        if component not in repo.dockerfiles:
            errors.append(f"component {component}: no image (dockerfiles/{component}.Dockerfile)")
    for name, df in repo.dockerfiles.items():
        where = f"dockerfiles/{name}.Dockerfile"
        if df.stages < 2:
            errors.append(f"{where}: not a multi-stage build")
        for base in df.base_images:
            if not re.match(r"^python:3\.11[.\d]*-slim", base):
                errors.append(f"{where}: base image {base} is not a pinned python:3.11-slim tag")
        if not re.search(r"torch==2\.13\.0", df.text):
            errors.append(f"{where}: does not install torch==2.13.0 first")
        if "requirements.lock" not in df.text:
            errors.append(f"{where}: does not install requirements.lock")
        for shell in SHELLS:  # not installed (only naviyam is): run from the image's WORKDIR
            if not re.search(rf"^COPY\s+{shell}/?\s+/app/{shell}/?\s*$", df.text, re.M):
                errors.append(f"{where}: does not COPY {shell} to /app/{shell}")
        if not re.search(r"PYTHONPATH=/app(\s|$)", df.text):
            errors.append(f"{where}: does not set PYTHONPATH=/app (where the shells are)")
        if df.user is None or df.user.split(":")[0] in ("0", "root"):
            errors.append(f"{where}: the final stage must switch to a non-root USER")
        elif not df.user.split(":")[0].isdigit():
            errors.append(f"{where}: USER {df.user}: use a numeric uid so runAsNonRoot can verify it")
        if df.entrypoint is None or df.entrypoint[:1] != ["python"]:
            errors.append(f"{where}: ENTRYPOINT must be an exec-form python command")
            continue
        if name in repo.components:
            if df.entrypoint != ["python", "-m", SERVER_MODULE]:
                errors.append(f"{where}: ENTRYPOINT must be [\"python\", \"-m\", \"{SERVER_MODULE}\"]")
            cmd = df.cmd or []
            effective = arg_value(cmd, "--component") or arg_value(cmd, "--model_name")
            if effective != name:
                errors.append(f"{where}: CMD runs {effective}, not {name}")
        elif name == "naviyam-feedback":
            if df.entrypoint != ["python", "-m", FEEDBACK_MODULE]:
                errors.append(f"{where}: ENTRYPOINT must be [\"python\", \"-m\", \"{FEEDBACK_MODULE}\"]")
    return errors
