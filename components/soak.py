"""Soak run for `make bench`: steady load on the local stack for a bounded time, watching every
server process's memory, the error rate and whether latency drifts.

A leak shows as resident memory that keeps growing after warm-up, so growth is measured from the
first sample taken once the load is running (caches fill in the first seconds) to the last one,
and reported per process with its slope (MiB per minute).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
import psutil

from components.load import load, processes
from naviyam.bench import percentiles

MAX_SOAK_S = 1800.0  # loopback load on a shared machine: never unbounded


@dataclass
class MemoryTrack:
    """RSS samples (MiB) of one process over time."""

    name: str
    process: psutil.Process
    at_s: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    def sample(self, t: float) -> None:
        try:
            rss = self.process.memory_info().rss / 2**20
        except psutil.Error:  # exited: the error rate will say so
            return
        self.at_s.append(t)
        self.rss_mib.append(rss)

    def summary(self) -> dict:
        if len(self.rss_mib) < 2:
            return {"samples": len(self.rss_mib)}
        t, rss = np.asarray(self.at_s), np.asarray(self.rss_mib)
        slope = float(np.polyfit(t, rss, 1)[0]) * 60 if np.ptp(t) > 0 else 0.0
        return {"start_mib": round(rss[0], 1), "end_mib": round(rss[-1], 1), "peak_mib": round(rss.max(), 1),
                "growth_mib": round(rss[-1] - rss[0], 1), "growth_pct": round(100 * (rss[-1] / rss[0] - 1), 2),
                "slope_mib_per_min": round(slope, 2), "samples": len(rss)}


async def soak(url: str, pids: dict[str, int], *, clients: int, seconds: float, texts: list[str],
               sample_every_s: float = 2.0, warmup_s: float = 5.0, run: str = "") -> dict:
    seconds = min(seconds, MAX_SOAK_S)
    tracks = [MemoryTrack(n, p) for n, p in processes(pids).items()]
    out: dict = {}
    task = asyncio.create_task(load(url, clients, seconds, texts, out=out, traffic="soak", run=run))
    started = time.perf_counter()
    while not task.done():
        await asyncio.sleep(sample_every_s)
        t = time.perf_counter() - started
        if t >= min(warmup_s, seconds / 4):
            for track in tracks:
                track.sample(t)
    result = await task
    at, lat = np.asarray(out["at_s"]), np.asarray(out["latency_ms"])
    thirds = np.array_split(np.argsort(at, kind="stable"), 3) if len(at) >= 3 else []
    windows = [percentiles(lat[idx].tolist()) for idx in thirds if len(idx)]
    memory = {t.name: t.summary() for t in tracks}
    total = [m for m in memory.values() if "growth_mib" in m]
    return {
        "clients": clients, "seconds": seconds, "requests": result["requests"],
        "throughput_rps": result["throughput_rps"], "error_rate": result["error_rate"],
        "latency_ms": result["latency_ms"],
        "latency_by_third_ms": [{"p50": w["p50"], "p95": w["p95"]} for w in windows],
        "memory": memory,
        "total_growth_mib": round(sum(m["growth_mib"] for m in total), 1),
    }


def format_soak(r: dict) -> list[str]:
    lat = r["latency_ms"]
    thirds = " -> ".join(f"{w['p50']}/{w['p95']}" for w in r["latency_by_third_ms"])
    lines = [f"soak, {r['clients']} clients x {r['seconds']:.0f} s: {r['requests']} requests, "
             f"{r['throughput_rps']} req/s, errors {r['error_rate']:.2%}, p50 {lat.get('p50')} ms p95 {lat.get('p95')} ms; "
             f"p50/p95 by thirds of the run (ms): {thirds}",
             f"    memory growth after warm-up, all servers: {r['total_growth_mib']:+.1f} MiB"]
    for name, m in r["memory"].items():
        if "growth_mib" in m:
            lines.append(f"    {name:<32} {m['start_mib']:>7.1f} -> {m['end_mib']:>7.1f} MiB "
                         f"({m['growth_mib']:+.1f} MiB, {m['growth_pct']:+.2f}%, {m['slope_mib_per_min']:+.2f} MiB/min)")
    return lines
