"""`make serve`: the whole online path on one machine, as local processes on loopback ports.

Starts the KServe ModelServers (the ranker as transformer + predictor, as on a cluster), the
feedback service, and the graph router reading inference_graph/naviyam.yaml — ports from
ServingSettings. By default the graph's services share one ModelServer process
(``serving.colocate``, ``naviyam-models``): one Python, KServe, catalog and Kiwi instead of five,
each service still its own model and URL; ``serving.colocate: []`` gives each its own process,
as on a cluster. Ctrl-C, SIGTERM or SIGHUP stops them all.

``serving.replicas`` runs more than one process for a graph step (nlu, nlg, ranker transformer),
like the pods behind a Service: replica 0 keeps the configured port, the others get free ones,
kept across restarts, and the router balances and retries over them (``serving.retry_*``).
Replica ``i > 0`` of ``naviyam-nlu`` is the component ``naviyam-nlu@i``.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from inference_graph.canary import write_canary_graph

from naviyam.bounds import TRAFFIC_HEADER
from naviyam.config import PREDICTOR, SHARED_PROCESS, Settings
from naviyam.registry import ModelRegistry

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
GRAPH = ROOT / "inference_graph" / "naviyam.yaml"
MODEL_NODES = ("naviyam-nlu", "naviyam-retriever", "naviyam-candidates", "naviyam-nlg")
LOG_CONFIG = ROOT / "components" / "logging.yaml"
# The graph's own steps: the router's retries reach their replicas. (Retriever, candidates and the
# predictor are called by the ranker transformer, which degrades instead of retrying.)
REPLICABLE = ("naviyam-nlu", "naviyam-nlg", "naviyam-ranker")
REPLICA_SEP = "@"
ADMIN_TOKEN_FILE = "admin_token"
# The server component behind a graph service, where the two names differ.
SERVICE_COMPONENT = {"naviyam-ranker": "naviyam-ranker-transformer"}


def free_ports(count: int, host: str = "127.0.0.1", taken: Iterable[int] = ()) -> list[int]:
    """``count`` distinct ports free on ``host`` now, none of them in ``taken``.

    The sockets stay bound until all are picked: ports picked one at a time, each socket closed
    before the next bind, can repeat, and two servers told the same port make the second one fail
    while the first answers for both (a health check on the router's port then reached feedback).
    """
    taken = set(taken)
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            sock = held.enter_context(socket.socket())
            sock.bind((host, 0))
            port = sock.getsockname()[1]
            if port not in taken:
                ports.append(port)
                taken.add(port)
        return ports


def replica_of(component: str) -> tuple[str, int]:
    """``naviyam-nlu@1`` -> (``naviyam-nlu``, 1); a plain name is replica 0."""
    base, sep, index = component.partition(REPLICA_SEP)
    return base, int(index) if sep else 0


class StopRequested(Exception):
    """SIGTERM or Ctrl-C arrived while the stack was starting."""


class StopSignal:
    """A signal handler that only records the signal, and a poll over it.

    Not a ``threading.Event``: its ``set()`` takes the lock that ``wait()`` holds around its check,
    so a signal landing inside ``wait()`` deadlocked the launcher in its own handler (make, waiting
    for it, never exited and the servers were never stopped). Assigning an attribute takes no lock.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: object = None) -> None:
        self.signum = signum

    def is_set(self) -> bool:
        return self.signum is not None

    def wait(self, timeout_s: float, poll_s: float = 0.1) -> bool:
        """Sleeps up to ``timeout_s``; True as soon as a signal was recorded."""
        deadline = time.monotonic() + timeout_s
        while not self.is_set() and time.monotonic() < deadline:
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        return self.is_set()


@dataclass
class LocalStack:
    settings: Settings
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_dir: Path | None = None
    replica_ports: dict[str, int] = field(default_factory=dict)  # component "name@i" -> its port

    def __post_init__(self) -> None:
        wrong = {n: k for n, k in self.settings.serving.replicas.items() if n not in REPLICABLE or k < 1}
        if wrong:
            raise ValueError(f"serving.replicas: {wrong} - only {', '.join(REPLICABLE)} may have replicas, "
                             "at least 1 each")

    def replicas(self, service: str) -> list[str]:
        """The components that serve ``service``: itself, then ``service@1`` ..."""
        n = self.settings.serving.replicas.get(service, 1)
        return [service, *(f"{service}{REPLICA_SEP}{i}" for i in range(1, n))]

    def port(self, component: str) -> int:
        """The port of a component's process (a colocated service: the shared process's)."""
        base, index = replica_of(component)
        if index == 0:
            base = self.settings.serving.process_of(base)
        if base == SHARED_PROCESS or index == 0:
            return self.settings.serving.port_of(base)
        if component not in self.replica_ports:  # picked once: a restarted replica comes back on it
            serving = self.settings.serving
            taken = [serving.router_port, *serving.ports.values(), *self.replica_ports.values()]
            self.replica_ports[component] = free_ports(1, serving.host, taken)[0]
        return self.replica_ports[component]

    def url(self, component: str) -> str:
        return f"http://{self.settings.serving.host}:{self.port(component)}"

    def _config_file(self) -> Path:
        """The stack's settings as one YAML file, so every child process sees the same ports and paths."""
        if not hasattr(self, "_config_path"):
            data = self.settings.model_dump(mode="json")
            data["home"] = str(self.settings.home.resolve())
            fd, path = tempfile.mkstemp(prefix="naviyam-stack-", suffix=".yaml")
            os.close(fd)
            Path(path).write_text(yaml.safe_dump(data, allow_unicode=True))
            self._config_path = Path(path)
        return self._config_path

    def _spawn(self, name: str, args: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAVIYAM_")}
        env["NAVIYAM_CONFIG"] = str(self._config_file())
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab") if self.log_dir else subprocess.DEVNULL
        self.procs[name] = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def model_server_args(self, name: str) -> list[str]:
        base, index = replica_of(name)
        args = self._model_server_args(base)
        if index:
            args[args.index("--http_port") + 1] = str(self.port(name))
        return [*args, "--log_config_file", str(LOG_CONFIG)]

    def _model_server_args(self, name: str) -> list[str]:
        s = self.settings.serving
        if name == SHARED_PROCESS:
            services = s.colocated()
            args = ["-m", "components.server", "--model_name", SHARED_PROCESS,
                    "--components", ",".join(SERVICE_COMPONENT.get(n, n) for n in services),
                    "--http_port", str(self.port(SHARED_PROCESS))]
            if "naviyam-ranker" in services and PREDICTOR not in services:
                # the transformer's predictor flags are the process's
                ranker = self._model_server_args("naviyam-ranker")
                args += ranker[ranker.index("--predictor_host"):]
            return args
        if name.startswith("naviyam-ranker-canary"):
            # The canary pair: same components, following the registry's canary pointer.
            base = self._model_server_args(name.replace("-canary", ""))
            base[base.index("--http_port") + 1] = str(s.ports[name])
            if "--predictor_host" in base:
                base[base.index("--predictor_host") + 1] = f"{s.host}:{s.ports['naviyam-ranker-canary-predictor']}"
            return [*base, "--channel", "canary"]
        if name == PREDICTOR:
            return ["-m", "components.server", "--component", name, "--model_name", "naviyam-ranker",
                    "--http_port", str(s.ports[name])]
        if name == "naviyam-ranker":
            return ["-m", "components.server", "--component", "naviyam-ranker-transformer",
                    "--model_name", "naviyam-ranker", "--http_port", str(s.ports[name]),
                    "--predictor_host", f"{s.host}:{s.ports[PREDICTOR]}",
                    "--predictor_protocol", "v2",
                    "--predictor_request_timeout_seconds", str(max(1, round(s.predictor_timeout_s)))]
        return ["-m", "components.server", "--model_name", name, "--http_port", str(s.ports[name])]

    def start_component(self, name: str) -> None:
        if name == "naviyam-feedback":
            self._spawn(name, ["-m", "components.feedback", "--port", str(self.settings.serving.ports[name])])
        elif name == "router":
            self._spawn(name, self.router_args())
        else:
            self._spawn(name, self.model_server_args(name))

    def canary_version(self) -> str | None:
        """The ranker version in canary, if the learning loop started one (registry pointer)."""
        return ModelRegistry.from_settings(self.settings).current_version("ranker", "canary")

    def service_endpoints(self, service: str) -> str | list[str]:
        """Predict URL(s) of a graph service: one per replica (a configured URL is a Service's)."""
        s = self.settings.serving
        if service in s.service_urls or len(self.replicas(service)) == 1:
            return s.predict_url(service)
        return [f"{self.url(c)}/v1/models/{service}:predict" for c in self.replicas(service)]

    def router_args(self) -> list[str]:
        s = self.settings.serving
        services = {name: self.service_endpoints(name) for name in (*MODEL_NODES, "naviyam-ranker")}
        graph = GRAPH
        if self.canary_version():
            # KServe's canaryTrafficPercent, locally: the graph's Splitter sends 10% to the canary pair.
            graph = write_canary_graph(Path(tempfile.mkdtemp(prefix="naviyam-graph-")) / "naviyam-canary.yaml")
            services["naviyam-ranker-canary"] = (
                f"{s.url('naviyam-ranker-canary')}/v1/models/naviyam-ranker:predict")
        fd, tmp = tempfile.mkstemp(prefix="naviyam-services-", suffix=".yaml")
        os.close(fd)
        path = Path(tmp)
        path.write_text(yaml.safe_dump(services))
        return ["-m", "inference_graph.router", "--graph", str(graph), "--services", str(path),
                "--port", str(s.router_port), "--host", s.host,
                "--step-timeout", str(s.step_timeout_s), "--graph-timeout", str(s.graph_timeout_s),
                "--retries", str(s.retry_attempts), "--per-try-timeout", str(s.per_try_timeout_s),
                "--retry-on", ",".join(s.retry_on), "--ejection", str(s.outlier_ejection_s),
                # Canonical names, as KServe's router matches them; the traffic label reaches naviyam-nlu.
                "--propagate-header", "^X-Request-Id$", "--propagate-header", f"^{TRAFFIC_HEADER}$"]

    def health_url(self, name: str) -> str:
        s = self.settings.serving
        if name == "router":
            return f"http://{s.host}:{s.router_port}/healthz"
        if name == "naviyam-feedback":
            return f"{s.url(name)}/healthz"
        base, _ = replica_of(name)
        if base == SHARED_PROCESS:  # KServe's server readiness: every model it serves is ready
            return f"{self.url(name)}/v2/health/ready"
        model = "naviyam-ranker" if base.startswith("naviyam-ranker") else base
        return f"{self.url(name)}/v2/models/{model}/ready"

    def components(self) -> list[str]:
        canary = ["naviyam-ranker-canary-predictor", "naviyam-ranker-canary"] if self.canary_version() else []
        extra = [c for service in REPLICABLE for c in self.replicas(service)[1:]]
        shared = self.settings.serving.colocated()
        own = [c for c in (*MODEL_NODES, PREDICTOR, "naviyam-ranker") if c not in shared]
        return [*([SHARED_PROCESS] if shared else []), *own, *extra, *canary, "naviyam-feedback", "router"]

    def start(self, timeout_s: float = 180.0, stopping: Callable[[], bool] = lambda: False) -> None:
        """Starts every component; ``stopping`` (polled while waiting) aborts the start-up with
        ``StopRequested``: the components started so far are in ``procs`` for ``stop()``."""
        # The router last, once every model server is ready: a graph that answers a greeting while
        # the ranker is still loading looks up to a client (the dialogue checker, a health probe)
        # and then fails every search with a connection error.
        servers = [c for c in self.components() if c != "router"]
        started = time.monotonic()
        for name in servers:
            if stopping():
                raise StopRequested
            self.start_component(name)
        self.wait_ready(servers, timeout_s, stopping)
        self.start_component("router")
        self.wait_ready(["router"], max(10.0, timeout_s - (time.monotonic() - started)), stopping)

    def wait_ready(self, names: list[str], timeout_s: float, stopping: Callable[[], bool] = lambda: False) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(names)
        while pending:
            if stopping():
                raise StopRequested
            for name in list(pending):
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} during start-up"
                                       + (f" (see {self.log_dir / (name + '.log')})" if self.log_dir else ""))
                try:
                    if httpx.get(self.health_url(name), timeout=1.0).status_code == 200:
                        pending.remove(name)
                        log.info("%s ready", name)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout_s:.0f}s: {', '.join(pending)}")
            if pending:
                time.sleep(0.3)

    def stop_component(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to every component at once, then SIGKILL to whatever outlives ``grace_s``: one
        grace period for the whole stack, not one per server."""
        procs = [(n, self.procs.pop(n)) for n in reversed(list(self.procs))]
        for _, proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for name, proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs: killed", name, grace_s)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> "LocalStack":
        try:
            self.start()
        except BaseException:  # a server that failed to start must not orphan the ones that did
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def with_admin_token(settings: Settings) -> Settings:
    """Settings whose ``serving.admin_token`` is set: the configured one, else one made for this
    laptop and kept in ``state/admin_token`` (mode 0600), so `make serve`'s admin endpoints
    (reload, rollback) work without the token ever being logged."""
    if settings.serving.admin_token:
        return settings
    path = settings.state_dir / ADMIN_TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if not token:
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token)
    log.info("admin endpoints: bearer token in %s", path)
    serving = settings.serving.model_copy(update={"admin_token": token})
    return settings.model_copy(update={"serving": serving})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="components.local_stack")
    parser.add_argument("--logs", default=None, help="directory for per-component logs (default: var/logs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = with_admin_token(Settings.load())
    log_dir = Path(args.logs) if args.logs else settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(settings, log_dir=log_dir)
    # The signal only sets a flag: an exception raised wherever the main thread happens to be
    # (inside Popen, between a spawn and its bookkeeping, inside the clean-up itself) is how
    # servers used to be orphaned. The loops below poll the flag.
    stop = StopSignal()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        stack.start(stopping=stop.is_set)
        s = settings.serving
        log.info("graph ready: POST http://%s:%d/  (feedback: POST %s/v1/feedback; logs in %s)",
                 s.host, s.router_port, s.url("naviyam-feedback"), log_dir)
        while not stop.wait(1.0):
            dead = [n for n, p in stack.procs.items() if p.poll() is not None]
            if dead:
                log.error("stopping: %s exited", ", ".join(dead))
                return 1
        return 0
    except StopRequested:
        return 0
    finally:
        log.info("stopping the local stack")
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
