"""`make bench` (graph part): bounded load on the local stack, loopback only.

For 1, 8 and 32 concurrent clients, each for a fixed duration: p50/p95/p99 latency, throughput and
error rate of the graph (POST /), plus per-hop latency from the answers' own step timings.
The targets (graph p50 <= 150 ms and p95 <= 400 ms at 32 clients, 2 cores, default NLU/NLG) are
printed beside the numbers.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import time

import httpx
import psutil

from components.local_stack import LocalStack
from naviyam.bench import BENCH_TIME, QUERIES, percentiles
from naviyam.bounds import TRAFFIC_HEADER
from naviyam.config import Settings

TARGET_P50_MS, TARGET_P95_MS = 150, 400


def bench_texts(settings: Settings) -> list[str]:
    """Held-out NLU utterances (every intent, child-style) plus the fixed examples: a realistic mix
    of searches and chit-chat, with as many distinct phrasings as children produce."""
    path = settings.data_dir / "nlu" / "nlu_test.jsonl"
    corpus = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    return [*QUERIES, *corpus]


async def _client(client: httpx.AsyncClient, url: str, deadline: float, seed: int, out: dict,
                  texts: list[str], traffic: str) -> None:
    started = out["started"]
    rng = random.Random(seed)
    session = f"bench-{seed}"
    while time.perf_counter() < deadline:
        body = {"user_id": f"user_{rng.randint(1, 5000)}", "text": rng.choice(texts), "session_id": session}
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
               traffic: str = "bench") -> dict:
    """Closed-loop load: ``clients`` concurrent clients, each sending its next request when the last
    one is answered. ``out`` (optional) is filled as requests complete, for a concurrent observer.
    Every request carries the ``traffic`` label, so the learning loop never trains on it."""
    out = out if out is not None else {}
    out.update({"latency_ms": [], "at_s": [], "errors": 0, "steps": {}, "searches": 0,
                "started": time.perf_counter()})
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_client(client, url, deadline, i, out, list(texts), traffic) for i in range(clients)))
        elapsed = time.perf_counter() - started
    n = len(out["latency_ms"])
    return {
        "clients": clients, "requests": n, "throughput_rps": round(n / elapsed, 1),
        "error_rate": round(out["errors"] / max(n, 1), 4), "search_share": round(out["searches"] / max(n, 1), 3), "latency_ms": percentiles(out["latency_ms"]) if n else {},
        "steps_ms": {k: percentiles(v) for k, v in out["steps"].items()},
    }


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """user+system CPU seconds so far of each server process."""
    out = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        out[name] = t.user + t.system
    return out


def measure(url: str, pids: dict[str, int], clients: int, seconds: float, texts: list[str]) -> dict:
    """One load level, plus the CPU each process spent per request: the budget that decides
    throughput when the whole stack shares a few cores."""
    before, own = cpu_seconds(pids), time.process_time()
    result = asyncio.run(load(url, clients, seconds, texts))
    after, own = cpu_seconds(pids), time.process_time() - own
    n = max(result["requests"], 1)
    result["cpu_ms_per_request"] = {k: round(1000 * (after[k] - before[k]) / n, 2) for k in after if k in before}
    result["cpu_ms_per_request"]["load generator"] = round(1000 * own / n, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="components.bench")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--soak-seconds", type=float, default=60.0,
                        help="soak run length in seconds (0 skips it; capped at 1800)")
    parser.add_argument("--soak-clients", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # A pinned server clock: which shops are open, and so the work per turn, must not follow the
    # time of day the benchmark happens to run at.
    settings = Settings.load()
    settings = settings.model_copy(update={"clock": settings.clock.model_copy(update={"pinned_at": BENCH_TIME})})
    results, soaked = [], None
    with LocalStack(settings, log_dir=settings.home / "logs") as stack:
        url = f"http://{settings.serving.host}:{settings.serving.router_port}/"
        pids = {name: proc.pid for name, proc in stack.procs.items()}
        texts = bench_texts(settings)
        asyncio.run(load(url, 4, 3.0))  # warm every node's first-request paths
        for clients in (int(c) for c in args.clients.split(",")):
            results.append(measure(url, pids, clients, args.seconds, texts))
        if args.soak_seconds > 0:
            from components.soak import soak

            soaked = asyncio.run(soak(url, pids, clients=args.soak_clients, seconds=args.soak_seconds, texts=texts))
    if args.json:
        print(json.dumps({"graph": results, "soak": soaked}, ensure_ascii=False))
        return 0
    cores = os.cpu_count() or 1
    for r in results:
        lat = r["latency_ms"]
        mark = ""
        if r["clients"] == 32:
            ok = lat["p50"] <= TARGET_P50_MS and lat["p95"] <= TARGET_P95_MS
            mark = f"  [target p50<={TARGET_P50_MS} p95<={TARGET_P95_MS}: {'met' if ok else 'MISSED'}]"
        print(f"graph, {r['clients']:>2} clients: p50 {lat['p50']} ms  p95 {lat['p95']} ms  p99 {lat['p99']} ms  "
              f"{r['throughput_rps']} req/s  errors {r['error_rate']:.2%}  searches {r['search_share']:.0%}{mark}")
        hops = "  ".join(f"{k} {v['p50']}" for k, v in r["steps_ms"].items())
        print(f"    per hop p50 (ms): {hops}")
        cpu = r["cpu_ms_per_request"]
        print(f"    CPU per request: {sum(cpu.values()):.1f} ms = " + "  ".join(f"{k} {v}" for k, v in cpu.items()))
    # Closed loop: p50 ~ clients / throughput, and throughput <= cores / CPU per request.
    budget = 1000 * cores * TARGET_P50_MS / 1000 / 32
    print(f"    (p50 <= {TARGET_P50_MS} ms at 32 closed-loop clients needs >= {32 * 1000 / TARGET_P50_MS:.0f} req/s, "
          f"i.e. <= {budget:.1f} ms CPU per request on this machine's {cores} cores)")
    if soaked:
        from components.soak import format_soak

        print("\n".join(format_soak(soaked)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
