"""`make bench`: latency percentiles of the warm in-process chatbot, per step and end to end.

Targets live here, not in timed tests: the numbers are printed with the target next to them.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from naviyam.config import Settings

QUERIES = (
    "급식카드 되는 치킨집 추천해줘", "떡볶이 먹고 싶어", "만원으로 뭐 먹지", "짜장면 먹을래",
    "학교 앞 분식집 알려줘", "피자 먹고싶다 ㅋㅋ", "점심에 한식 먹을 곳", "편의점 도시락 어디서 사?",
    "햄버거 세트 오천원 이하", "카페 가고 싶어", "거기 말고 다른 데는?", "더 싼 곳은?",
)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {f"p{q}": round(float(np.percentile(arr, q)), 2) for q in (50, 95, 99)} | {
        "mean": round(statistics.fmean(arr), 2), "n": len(arr)}


def bench_inprocess(settings: Settings, rounds: int) -> dict:
    from naviyam.chatbot import NaviyamChatbot
    from naviyam.events import EventStore
    from naviyam.memory import ConversationMemory
    from naviyam.models import ModelBundle

    models = ModelBundle(settings)
    models.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        bot = NaviyamChatbot(models, ConversationMemory(Path(tmp) / "m.sqlite"), EventStore(Path(tmp) / "e.sqlite"))
        for q in QUERIES[:3]:  # warm caches and thread pools
            bot.chat(q, user_id="user_1")
        total, steps = [], {}
        for i in range(rounds):
            for j, q in enumerate(QUERIES):
                start = time.perf_counter()
                resp = bot.chat(q, user_id=f"user_{1 + (i * 31 + j) % 5000}", session_id=f"bench{i}")
                total.append((time.perf_counter() - start) * 1000)
                for step, ms in resp.metadata.timings_ms.items():
                    steps.setdefault(step, []).append(ms)
        bot.close()
    return {"chat_ms": percentiles(total), "steps_ms": {k: percentiles(v) for k, v in steps.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="naviyam.bench")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.load()
    report = {"inprocess": bench_inprocess(settings, args.rounds)}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    chat = report["inprocess"]["chat_ms"]
    print(f"in-process chat (warm), {chat['n']} queries: p50 {chat['p50']} ms  p95 {chat['p95']} ms  "
          f"p99 {chat['p99']} ms")
    for step, stats in report["inprocess"]["steps_ms"].items():
        print(f"  step {step:<12} p50 {stats['p50']:>7} ms  p95 {stats['p95']:>7} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
