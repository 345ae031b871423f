"""`make serve` stops on SIGTERM, SIGINT or SIGHUP to its process group, as a terminal, `timeout`, a supervisor or a CI runner
sends it: every server gone and every port free, whether the signal lands while the servers are
still starting or once the graph answers (servers run in their own sessions, so only the
launcher can stop them)."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from components.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]


def launch(served, tmp_path, command: list[str] | None = None) -> subprocess.Popen:
    """The launcher (or ``command``, e.g. make) on ``served``'s settings, in a session of its own."""
    config = tmp_path / "stack.yaml"
    data = served.model_dump(mode="json")
    data["home"] = str(served.home.resolve())
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAVIYAM_")}
    env["NAVIYAM_CONFIG"] = str(config)
    command = command or [sys.executable, "-m", "components.local_stack", "--logs", str(tmp_path / "logs")]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)


def descendants(proc: subprocess.Popen) -> list[psutil.Process]:
    """The servers the launcher started (each in its own session: children of the launcher)."""
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_all_gone(proc: subprocess.Popen, servers: list[psutil.Process], timeout_s: float = 40.0) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=timeout_s)
    gone, alive = psutil.wait_procs(servers, timeout=5)
    assert not alive, f"orphaned after SIGTERM: {[p.pid for p in alive]}"


def wait_until_answering(proc: subprocess.Popen, served, timeout_s: float = 300.0) -> str:
    """The router's /healthz URL, once it answers 200 (fails if ``proc`` exits first)."""
    url = f"http://{served.serving.host}:{served.serving.router_port}/healthz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args} exited during start-up"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return url
        except httpx.HTTPError:
            time.sleep(0.5)
    pytest.fail("the graph never answered")


@pytest.fixture()
def launched():
    """``launch`` for a test, and at its end every launcher still running is killed with what it
    started: a check failing before the signal is sent must not leave a stack for the rest of
    the suite (each server runs in a session of its own, out of the launcher's group)."""
    procs: list[subprocess.Popen] = []

    def start(served, tmp_path, command: list[str] | None = None) -> subprocess.Popen:
        procs.append(launch(served, tmp_path, command))
        return procs[-1]

    yield start
    for proc in procs:
        for child in descendants(proc):
            with contextlib.suppress(psutil.Error):
                child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture()
def served(settings, on_free_ports, private_home):
    return on_free_ports(settings.model_copy(update={"home": private_home("stops-home")}))


def test_sigterm_while_the_servers_start_leaves_none_behind(served, tmp_path, launched):
    proc = launched(served, tmp_path)
    # Mid start-up: every server spawned and loading, the router (started once they are ready) not yet.
    spawned = len(LocalStack(served).components()) - 1
    deadline = time.monotonic() + 60
    while len(descendants(proc)) < spawned and time.monotonic() < deadline:
        time.sleep(0.2)
    servers = descendants(proc)
    assert len(servers) >= spawned
    assert_all_gone(proc, servers)


def test_sigterm_once_the_graph_answers_leaves_none_behind(served, tmp_path, launched):
    proc = launched(served, tmp_path)
    url = wait_until_answering(proc, served)
    servers = descendants(proc)
    started = time.monotonic()
    assert_all_gone(proc, servers)
    assert proc.returncode == 0
    assert time.monotonic() - started < 30
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=1)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_make_serve_stops_on_a_signal_to_its_whole_group(served, tmp_path, launched, sig):
    """`make serve` as a user runs it (make the parent, `-o build`: the data is built), the signal
    sent to the whole group as a terminal, `timeout` or a CI runner does: nothing left, no port held."""
    make = launched(served, tmp_path, ["make", "--no-print-directory", "-o", "build", "serve"])
    wait_until_answering(make, served)
    servers = descendants(make)
    # the launcher, then every server it starts (model servers, feedback, the router)
    assert len(servers) >= 1 + len(LocalStack(served).components())
    os.killpg(make.pid, sig)
    make.wait(timeout=40)
    _, alive = psutil.wait_procs(servers, timeout=30)
    assert not alive, f"left running after {sig.name}: {[(p.pid, p.cmdline()[-3:]) for p in alive]}"
    ports = [served.serving.router_port, *served.serving.ports.values()]
    assert [p for p in ports if not port_is_free(served.serving.host, p)] == []
