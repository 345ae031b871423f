"""`make bench` (in-process part): latency percentiles of the warm chatbot, per step and end to
end; its CPU per turn on the same turns the graph bench sends; the one-shot `naviyam chat` cold start.

Targets live here, not in timed tests: the numbers are printed with the target next to them.

The chatbot's modules are imported inside the functions that build one, deliberately: the load
generators (``components.load``, ``components.soak``) import this module for its request streams
and must not load pandas, faiss and onnxruntime for it; the ranker comparison alone pays for torch.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from naviyam.clock import Clock
from naviyam.config import Settings

QUERIES = (
    "급식카드 되는 치킨집 추천해줘", "떡볶이 먹고 싶어", "만원으로 뭐 먹지", "짜장면 먹을래",
    "학교 앞 분식집 알려줘", "피자 먹고싶다 ㅋㅋ", "점심에 한식 먹을 곳", "편의점 도시락 어디서 사?",
    "햄버거 세트 오천원 이하", "카페 가고 싶어", "거기 말고 다른 데는?", "더 싼 곳은?",
    "우유 알레르기 있어", "두 번째 가게 몇 시까지 해?", "친구랑 둘이 만원", "강남역 근처 햄버거집", "걸어서 10분 안에",
    "저녁 8시 반에 갈 수 있는 떡볶이집",
)
BENCH_TIME = datetime(2026, 12, 2, 15, 40)   # pinned: open shops, and so the work per turn, don't follow the clock
UNDERSTANDING_TARGET_MS = 6.0   # preprocess + NLU + dialogue state, p50
ONNX_SPEEDUP_TARGET = 3.0       # onnxruntime vs eager torch on one turn's 100 candidates, p50
COLD_START_TARGET_S = 3.0       # one-shot `naviyam chat`, wall
COLD_START_TEXT = "떡볶이 먹고 싶어"


def bench_texts(settings: Settings) -> list[str]:
    """Held-out NLU utterances (every intent, child-style) plus the fixed examples: a realistic mix
    of searches and chit-chat, with as many distinct phrasings as children produce."""
    path = settings.data_dir / "nlu" / "nlu_test.jsonl"
    corpus = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    return [*QUERIES, *corpus]


def turn_stream(seed: int, texts: list[str], run: str = "") -> Iterator[dict]:
    """One bench client's endless turns: one session, a seeded choice of user and text each turn.
    The graph's load clients and the in-process CPU measurement replay the same streams."""
    rng = random.Random(seed)
    session = f"bench-{run}{seed}"
    while True:
        yield {"user_id": f"user_{rng.randint(1, 5000)}", "text": rng.choice(texts), "session_id": session}


def percentiles(samples_ms: list[float], digits: int = 2) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {f"p{q}": round(float(np.percentile(arr, q)), digits) for q in (50, 95, 99)} | {
        "mean": round(statistics.fmean(arr), digits), "n": len(arr)}


def bench_inprocess(settings: Settings, rounds: int) -> dict:
    from naviyam.chatbot import NaviyamChatbot
    from naviyam.events import EventStore
    from naviyam.memory import ConversationMemory
    from naviyam.models import ModelBundle

    models = ModelBundle(settings)
    models.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        bot = NaviyamChatbot(models, ConversationMemory(Path(tmp) / "m.sqlite"), EventStore(Path(tmp) / "e.sqlite"),
                             clock=Clock(BENCH_TIME))
        for q in QUERIES[:3]:  # warm caches and thread pools
            bot.chat(q, user_id="user_1", traffic="bench")
        total, steps, understanding = [], {}, []
        for i in range(rounds):
            for j, q in enumerate(QUERIES):
                start = time.perf_counter()
                resp = bot.chat(q, user_id=f"user_{1 + (i * 31 + j) % 5000}", session_id=f"bench{i}", now=BENCH_TIME,
                                traffic="bench")
                total.append((time.perf_counter() - start) * 1000)
                for step, ms in resp.metadata.timings_ms.items():
                    steps.setdefault(step, []).append(ms)
                timings = resp.metadata.timings_ms
                understanding.append(timings.get("preprocess", 0.0) + timings.get("nlu", 0.0))
        bot.close()
    return {"chat_ms": percentiles(total), "steps_ms": {k: percentiles(v) for k, v in steps.items()},
            "understanding_ms": percentiles(understanding)}


class InProcessBot:
    """A warm in-process chatbot on a private memory and event log, replaying bench streams.

    The same object serves the baseline before the stack starts and the in-process half of each
    paired round (``components.bench``), so both halves of a ratio are measured the same way.
    """

    def __init__(self, settings: Settings, models=None):
        from naviyam.chatbot import NaviyamChatbot
        from naviyam.events import EventStore
        from naviyam.memory import ConversationMemory
        from naviyam.models import ModelBundle

        if models is None:
            models = ModelBundle(settings)
            models.warm_up()
        self._tmp = tempfile.TemporaryDirectory()
        tmp = Path(self._tmp.name)
        self.bot = NaviyamChatbot(models, ConversationMemory(tmp / "m.sqlite"), EventStore(tmp / "e.sqlite"),
                                  clock=Clock(BENCH_TIME))

    def cpu_ms(self, texts: list[str], turns: int, seed: int = 0, run: str = "") -> list[float]:
        """CPU (user+system, every thread of this process) of each of the first ``turns`` turns
        of bench client ``seed``'s stream."""
        stream = turn_stream(seed, texts, run)
        return [self.turn_cpu_ms(next(stream)) for _ in range(turns)]

    def turn_cpu_ms(self, body: dict) -> float:
        """CPU (user+system, every thread of this process) of one turn."""
        from naviyam.schemas import UserInput

        start = time.process_time()
        self.bot.process(UserInput(**body), traffic="bench")
        return (time.process_time() - start) * 1000

    def close(self) -> None:
        self.bot.close()
        self._tmp.cleanup()

    def __enter__(self) -> "InProcessBot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cpu_per_turn(settings: Settings, texts: list[str], turns: int = 300, seed: int = 0, run: str = "",
                 bot: InProcessBot | None = None) -> dict:
    """CPU per warm in-process turn, over the first ``turns`` turns of bench client ``seed``'s
    stream: the baseline the served graph's CPU per turn is divided by."""
    own = bot is None
    bot = bot or InProcessBot(settings)
    try:
        bot.cpu_ms(texts, 5, seed + 1000, run)  # first-call costs, paid in another session
        cpu_ms = bot.cpu_ms(texts, turns, seed, run)
    finally:
        if own:
            bot.close()
    return {"turns": turns, "cpu_ms": percentiles(cpu_ms), "cpu_ms_per_turn": round(statistics.fmean(cpu_ms), 2)}


def cold_start(runs: int = 3, text: str = COLD_START_TEXT) -> dict:
    """Wall time of the command a newcomer types first: a one-shot `naviyam chat` (a new process
    each time: imports, model loading, one turn). Labelled bench, so no learning reads the turn."""
    exe = Path(sys.executable).with_name("naviyam")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "naviyam.cli"]
    cmd += ["chat", text, "--user-id", "user_77", "--traffic", "bench"]
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-500:]}")
    return {"runs": runs, "wall_s": sorted(round(w, 2) for w in walls), "median_s": round(statistics.median(walls), 2)}


def _timeit(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def bench_ranker(settings: Settings, n_candidates: int = 100, repeat: int = 300) -> dict:
    """ONNX (onnxruntime, serving) vs eager torch (training) on the same inputs, 1 thread each."""
    import torch

    from naviyam.data.catalog import Catalog
    from naviyam.dialogue.profile import profile_for
    from naviyam.ranking.scorer import OnnxRanker
    from naviyam.ranking.train import load_checkpoint
    from naviyam.schemas import RequestContext, UserInput, time_slot_of

    model_dir = settings.models_dir / "ranker"
    catalog = Catalog.load(settings.data_dir)
    onnx = OnnxRanker.load(model_dir)
    model, _, _ = load_checkpoint(model_dir)
    profile = profile_for(catalog, UserInput(user_id="user_123", text="x"))
    lat, lon = catalog.school_location(profile.school_id)
    now = datetime(2026, 11, 25, 16, 0)
    ctx = RequestContext(now=now, time_slot=time_slot_of(now), origin_lat=lat, origin_lon=lon, school_id=profile.school_id)
    shops = list(catalog.shops["shop_id"][:n_candidates])
    inputs = onnx.features.build_inputs([profile], shops, ctx)
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    torch.set_num_threads(1)
    with torch.inference_mode():
        eager = lambda: model(**tensors)  # noqa: E731
        for _ in range(20):
            eager(), onnx.predict(inputs)
        torch_ms = _timeit(eager, repeat)
    onnx_ms = _timeit(lambda: onnx.predict(inputs), repeat)
    features_ms = _timeit(lambda: onnx.features.build_inputs([profile], shops, ctx), 50)
    # Sub-millisecond calls: keep microsecond precision so the ratio is not a rounding artefact.
    p_t, p_o = percentiles(torch_ms, digits=4), percentiles(onnx_ms, digits=4)
    return {"candidates": n_candidates, "torch_ms": p_t, "onnx_ms": p_o, "features_ms": percentiles(features_ms),
            "speedup_p50": round(p_t["p50"] / p_o["p50"], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="naviyam.bench")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.load()
    report = {"inprocess": bench_inprocess(settings, args.rounds), "ranker": bench_ranker(settings)}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    chat = report["inprocess"]["chat_ms"]
    print(f"in-process chat (warm), {chat['n']} queries: p50 {chat['p50']} ms  p95 {chat['p95']} ms  "
          f"p99 {chat['p99']} ms")
    for step, stats in report["inprocess"]["steps_ms"].items():
        print(f"  step {step:<12} p50 {stats['p50']:>7} ms  p95 {stats['p95']:>7} ms")
    u = report["inprocess"]["understanding_ms"]
    print(f"understanding (preprocess + NLU + dialogue state): p50 {u['p50']} ms  p95 {u['p95']} ms "
          f"(target p50 <= {UNDERSTANDING_TARGET_MS} ms: {'ok' if u['p50'] <= UNDERSTANDING_TARGET_MS else 'MISSED'})")
    r = report["ranker"]
    print(f"ranker, {r['candidates']} candidates: onnxruntime p50 {r['onnx_ms']['p50']} ms vs eager torch p50 "
          f"{r['torch_ms']['p50']} ms -> ONNX {r['speedup_p50']}x faster (target >= {ONNX_SPEEDUP_TARGET}x: "
          f"{'ok' if r['speedup_p50'] >= ONNX_SPEEDUP_TARGET else 'MISSED'}); "
          f"feature assembly p50 {r['features_ms']['p50']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
