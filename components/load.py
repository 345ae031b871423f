"""Closed-loop load on the graph endpoint, shared by `make bench` and its soak run.

Each client replays ``naviyam.bench.turn_stream`` (its own user, one session, a seeded mix of
texts), so the in-process CPU figure the served one is compared with is measured on the same turns.
"""
from __future__ import annotations

import asyncio
import time

import httpx
import psutil

from naviyam.bench import QUERIES, percentiles, turn_stream
from naviyam.bounds import TRAFFIC_HEADER


async def _client(client: httpx.AsyncClient, url: str, deadline: float, seed: int, out: dict,
                  texts: list[str], traffic: str, run: str, turns: int | None) -> None:
    started = out["started"]
    for sent, body in enumerate(turn_stream(seed, texts, run)):
        if time.perf_counter() >= deadline or (turns is not None and sent >= turns):
            return
        start = time.perf_counter()
        try:
            resp = await client.post(url, json=body, headers={TRAFFIC_HEADER: traffic})
            ok = resp.status_code == 200
        except httpx.HTTPError:
            ok, resp = False, None
        out["latency_ms"].append((time.perf_counter() - start) * 1000)
        out["at_s"].append(start - started)
        if not ok:
            out["errors"] += 1
            continue
        meta = resp.json()["metadata"]
        out["searches"] += "ranking" in meta["timings_ms"]
        for step, ms in meta["timings_ms"].items():
            out["steps"].setdefault(step, []).append(ms)


async def load(url: str, clients: int, seconds: float, texts: list[str] = QUERIES, out: dict | None = None,
               traffic: str = "bench", run: str = "", turns: int | None = None) -> dict:
    """``clients`` concurrent clients, each sending its next request when the last one is answered,
    for ``seconds`` or, with ``turns``, until each has sent that many. ``run`` prefixes the session
    ids, so a run starts fresh sessions instead of continuing an earlier run's dialogue state.
    ``out`` (optional) is filled as requests complete, for a concurrent observer (the soak run).
    Every request carries the ``traffic`` label, so the learning loop never trains on it."""
    out = out if out is not None else {}
    out.update({"latency_ms": [], "at_s": [], "errors": 0, "steps": {}, "searches": 0,
                "started": time.perf_counter()})
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_client(client, url, deadline, i, out, list(texts), traffic, run, turns)
                               for i in range(clients)))
        elapsed = time.perf_counter() - started
    n = len(out["latency_ms"])
    return {
        "clients": clients, "requests": n, "throughput_rps": round(n / elapsed, 1),
        "error_rate": round(out["errors"] / max(n, 1), 4), "search_share": round(out["searches"] / max(n, 1), 3),
        "latency_ms": percentiles(out["latency_ms"]) if n else {},
        "steps_ms": {k: percentiles(v) for k, v in out["steps"].items()},
    }


def processes(pids: dict[str, int]) -> dict[str, psutil.Process]:
    """The live processes among ``pids`` (a server that has exited is left out, not fatal)."""
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid)
        except psutil.Error:
            continue
    return out


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """user+system CPU seconds so far of each server process."""
    out = {}
    for name, proc in processes(pids).items():
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        out[name] = t.user + t.system
    return out


def resident_mib(pids: dict[str, int]) -> dict[str, dict[str, float]]:
    """RSS and PSS (MiB) of each process with its children. RSS counts pages shared between
    processes (libraries, a memory-mapped index) once per process; PSS splits them fairly."""
    out = {}
    for name, proc in processes(pids).items():
        rss = pss = 0.0
        try:
            family = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for p in family:
            try:
                info = p.memory_full_info()
            except psutil.Error:
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        out[name] = {"rss_mib": round(rss / 2**20, 1), "pss_mib": round(pss / 2**20, 1)}
    return out
