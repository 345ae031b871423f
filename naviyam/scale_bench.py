"""`python -m naviyam.scale_bench`: how a chat turn's cost grows with the catalog.

For each scale (1x, 10x, 100x today's 24 schools / 2,400 shops / 5,200 children) the same
generator (``naviyam.data.generate``; a bigger world repeats today's metropolitan tile side by
side, see ``naviyam.data.world``) builds a data set into a temporary home (never ``var/``), and a
fresh process measures the real ``NaviyamChatbot.process`` on a fixed set of child requests:
process CPU per turn (median, p95), resident memory, and the FAISS index's build time.

What is built per size, and what is reused (building every model at 100x on 2 cores would take
hours, and none of them is what a turn's cost depends on):
- data set, candidate funnels (popularity, CF matrix, slot priors), BM25 and FAISS: per size;
- BM25: Kiwi analyses each distinct word of the shop documents once (whole documents: ~17 min at 100x);
- dense index: random unit vectors of the embedder's dimension per shop (embedding 240,000 shop
  texts with the real model takes hours on 2 cores); queries are embedded by the real model;
- NLU and the Wide&Deep ranker: today's trained ones, copied from ``--models-from``; the ranker
  scores shops it never saw with its defaults, which costs the same.
- children: scaled with the schools up to ``MAX_USER_SCALE``x. The simulator gives every child
  the same number of sessions in any window, so the log grows with the children (45M events at
  100x, over 20 minutes and ~10 GB to simulate on 2 cores); at 100x the shops have a tenth of
  today's children each, which makes the CF funnel's part of a turn (its cost follows the users
  of the child's own shops) cheaper than a full country's would be. Printed with the table.

Each function imports what it runs, deliberately: the ``--measure`` child reports its resident
memory, which must be a chat process's, not one that also loaded the data generator and builders.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from naviyam.config import Settings

log = logging.getLogger(__name__)

SCALES = (1, 10, 100)
CPU_RATIO_GOAL = 2.0       # CPU per turn at 100x over 1x
DAYS = 91                  # today's event log
MAX_USER_SCALE = 10        # children scale with schools up to this (see the module docstring)
REUSED_MODELS = ("nlu", "ranker")
EMBEDDINGS = "random unit vectors (shop side); queries embedded by the real model"
BM25_TOKENS = ("shop documents tokenized word by word, each distinct word once (the real build analyses "
               "whole documents: ~230 documents/s here, 17 min at 100x)")
# Twenty requests children send, follow-ups included (they read the previous turn's list).
REQUESTS = (
    "급식카드 되는 치킨집 추천해줘", "떡볶이 먹고 싶어", "만원으로 뭐 먹지", "짜장면 먹을래",
    "학교 앞 분식집 알려줘", "피자 먹고싶다 ㅋㅋ", "점심에 한식 먹을 곳", "편의점 도시락 어디서 사?",
    "햄버거 세트 오천원 이하", "카페 가고 싶어", "거기 말고 다른 데는?", "더 싼 곳은?",
    "우유 알레르기 있어", "두 번째 가게 몇 시까지 해?", "친구랑 둘이 만원", "걸어서 10분 안에",
    "저녁 8시 반에 갈 수 있는 떡볶이집", "매운 거 말고 순한 거", "착한가게 중에 김밥집", "가까운 순으로 보여줘",
)
ROUNDS = 2                 # timed passes over REQUESTS (after one untimed warm-up pass)


class SizeResult(BaseModel):
    scale: int
    shops: int
    menus: int
    users: int
    events: int
    build_s: float
    turns: int
    cpu_ms_p50: float
    cpu_ms_p95: float
    rss_mb: float
    index_kind: str
    index_build_s: float
    flat_build_s: float
    ivf_build_s: float
    flat_search_ms: float
    ivf_search_ms: float


# ------------------------------------------------------------------------------------ build

def user_scale(scale: int) -> int:
    return min(scale, MAX_USER_SCALE)


def build_home(home: Path, scale: int, models_from: Path, base: Settings) -> dict:
    """Data set, candidates and retriever for one scale in ``home``; NLU/ranker copied."""
    from naviyam.candidates.generator import CandidateGenerator
    from naviyam.data.catalog import Catalog
    from naviyam.data.generate import build_dataset, load_events

    settings = Settings(home=home, seed=base.seed)
    started = time.perf_counter()
    summary = build_dataset(settings, n_schools=base.n_schools * scale, n_shops=base.n_shops * scale,
                            n_users=base.n_users * user_scale(scale), days=DAYS)
    for part in REUSED_MODELS:
        shutil.copytree(models_from / part, settings.models_dir / part)
    catalog = Catalog.load(settings.data_dir)
    with CandidateGenerator.build(catalog, load_events(settings.data_dir), settings.candidates) as generator:
        generator.save(settings.models_dir / "candidates")
    index = build_retriever(catalog, settings)
    return {"shops": summary["shops"], "menus": summary["menus"], "users": summary["users"],
            "events": summary["events"], **index,
            "build_s": round(time.perf_counter() - started, 1)}


def random_unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build_retriever(catalog, settings: Settings) -> dict:
    """The real retriever over random shop vectors (see the module docstring), with the index
    kind ``ivf_threshold`` picks; both kinds are built and timed (build, and a search restricted
    to one school's neighbourhood), which is what the threshold is set from."""
    from naviyam.retrieval.bm25_index import BM25Index
    from naviyam.retrieval.documents import Tokenizer
    from naviyam.retrieval.embedder import make_embedder
    from naviyam.retrieval.retriever import FORMAT_VERSION, Retriever, catalog_documents

    embedder = make_embedder(settings.retrieval)
    shop_ids, documents, dense_texts = catalog_documents(catalog)
    raw = random_unit_vectors(len(shop_ids), embedder.dim, settings.seed)
    lat, lon = catalog.school_location(str(catalog.schools.index[0]))
    near, _ = catalog.rows_within(lat, lon, settings.candidates.max_distance_km)
    kinds, timings = index_kinds(raw, near)
    vectors = kinds["flat" if len(shop_ids) <= settings.retrieval.ivf_threshold else "ivf"]
    tokenizer = Tokenizer()
    bm25 = BM25Index.build(tokenize_by_word(tokenizer, documents))
    meta = {"format": FORMAT_VERSION, "version": f"rag-scale-{len(shop_ids)}", "embedder": embedder.name,
            "dim": int(embedder.dim), "n_docs": len(shop_ids), "index_type": vectors.kind,
            "nlist": vectors.nlist, "nprobe": vectors.nprobe, "embeddings": EMBEDDINGS}
    Retriever(catalog=catalog, embedder=embedder, settings=settings.retrieval, tokenizer=tokenizer,
              shop_ids=shop_ids, documents=documents, dense_texts=dense_texts, vectors=vectors, bm25=bm25,
              meta=meta).save(settings.models_dir / "retriever")
    return {"index_build_s": timings[f"{'flat' if vectors.kind == 'flat' else 'ivf'}_build_s"], **timings}


def tokenize_by_word(tokenizer, documents: list[str]) -> list[list[str]]:
    """BM25 tokens of each document, each distinct word analysed once (see ``BM25_TOKENS``):
    the index has the real index's vocabulary and postings, built in seconds, not minutes."""
    words = [document.split() for document in documents]
    distinct = list(dict.fromkeys(w for doc in words for w in doc))
    tokens_of = dict(zip(distinct, tokenizer.tokenize_many(distinct)))
    return [[t for w in doc for t in tokens_of[w]] for doc in words]


def index_kinds(vectors: np.ndarray, near: np.ndarray):
    """A flat and an IVF index over ``vectors``, their build times, and the CPU of a search
    restricted to ``near`` (a neighbourhood's ids) on each."""
    from naviyam.retrieval.vector_index import VectorIndex

    query = random_unit_vectors(1, vectors.shape[1], 1)[0]
    built, timings = {}, {}
    for kind, threshold in (("flat", len(vectors)), ("ivf", 0)):
        t0 = time.perf_counter()
        built[kind] = VectorIndex.build(vectors, threshold)
        timings[f"{kind}_build_s"] = round(time.perf_counter() - t0, 2)
        built[kind].search(query, 50, near)
        t0 = time.process_time()
        for _ in range(20):
            built[kind].search(query, 50, near)
        timings[f"{kind}_search_ms"] = round((time.process_time() - t0) / 20 * 1000, 3)
    return built, timings


# ---------------------------------------------------------------------------------- measure

def measure_turns(home: Path, rounds: int = ROUNDS, requests: tuple[str, ...] = REQUESTS) -> dict:
    """CPU per warm turn through ``NaviyamChatbot.process`` and this process's RSS (run it in a
    fresh process per size, so memory is this size's alone)."""
    import psutil

    from naviyam.bench import BENCH_TIME
    from naviyam.chatbot import NaviyamChatbot
    from naviyam.clock import Clock
    from naviyam.events import EventStore
    from naviyam.memory import ConversationMemory
    from naviyam.models import ModelBundle
    from naviyam.schemas import UserInput

    settings = Settings(home=home)
    models = ModelBundle(settings)
    models.warm_up()
    n_users = len(models.catalog.users)
    users = models.catalog.users.index.to_numpy()
    with tempfile.TemporaryDirectory() as tmp:
        bot = NaviyamChatbot(models, ConversationMemory(Path(tmp) / "m.sqlite"), EventStore(Path(tmp) / "e.sqlite"),
                             clock=Clock(BENCH_TIME))
        cpu_ms: list[float] = []
        for r in range(rounds + 1):   # pass 0 warms caches and pools, untimed
            for j, text in enumerate(requests):
                # Children from all over the (scaled) world; one child asks four in a row (in
                # one session, so follow-ups read the list before).
                user = str(users[(7919 * (j // 4 + 1) + 104729 * r) % n_users])
                body = UserInput(user_id=user, text=text, session_id=f"scale-{r}-{j // 4}", timestamp=BENCH_TIME)
                start = time.process_time()
                bot.process(body, traffic="bench")
                if r:
                    cpu_ms.append((time.process_time() - start) * 1000)
        bot.close()
    rss_mb = psutil.Process().memory_info().rss / 2**20
    return {"turns": len(cpu_ms), "cpu_ms_p50": round(statistics.median(cpu_ms), 2),
            "cpu_ms_p95": round(float(np.percentile(cpu_ms, 95)), 2), "rss_mb": round(rss_mb, 1),
            "index_kind": models.retriever.meta["index_type"]}


def measure_size(home: Path, scale: int, built: dict) -> SizeResult:
    """Turns are measured in a fresh process, so its memory is this size's alone."""
    proc = subprocess.run([sys.executable, "-m", "naviyam.scale_bench", "--measure", str(home)],
                          capture_output=True, text=True, check=True)
    return SizeResult(scale=scale, **built, **json.loads(proc.stdout.strip().splitlines()[-1]))


# ------------------------------------------------------------------------------------ report

def table(results: list[SizeResult]) -> str:
    head = (f"{'scale':>5} {'shops':>8} {'menus':>9} {'users':>8} {'events':>9} "
            f"{'cpu p50 ms':>10} {'cpu p95 ms':>10} {'rss MB':>8} {'index':>9} {'index s':>8} "
            f"{'flat s':>7} {'ivf s':>7} {'flat q ms':>9} {'ivf q ms':>8}")
    rows = [f"{r.scale:>4}x {r.shops:>8} {r.menus:>9} {r.users:>8} {r.events:>9} "
            f"{r.cpu_ms_p50:>10.2f} {r.cpu_ms_p95:>10.2f} {r.rss_mb:>8.0f} {r.index_kind:>9} "
            f"{r.index_build_s:>8.2f} {r.flat_build_s:>7.2f} {r.ivf_build_s:>7.2f} "
            f"{r.flat_search_ms:>9.3f} {r.ivf_search_ms:>8.3f}" for r in results]
    return "\n".join([head, *rows])


def ratio_line(results: list[SizeResult]) -> str:
    first, last = results[0], results[-1]
    ratio = last.cpu_ms_p50 / first.cpu_ms_p50 if first.cpu_ms_p50 else float("nan")
    verdict = "ok" if ratio <= CPU_RATIO_GOAL else "over the goal"
    return (f"CPU per turn (p50) {last.scale}x / {first.scale}x = {ratio:.2f}  "
            f"(goal <= {CPU_RATIO_GOAL:.1f}: {verdict})")


def run(scales: tuple[int, ...], models_from: Path, keep: Path | None = None,
        base: Settings | None = None) -> list[SizeResult]:
    """Build and measure each scale of ``base``'s sizes (default: the configured ones)."""
    base = base or Settings()
    results = []
    with tempfile.TemporaryDirectory(prefix="naviyam-scale-") as tmp:
        root = keep or Path(tmp)
        for scale in scales:
            home = root / f"x{scale}"
            log.info("scale %dx: building into %s", scale, home)
            built = build_home(home, scale, models_from, base)
            results.append(measure_size(home, scale, built))
            log.info("scale %dx: %s", scale, results[-1].model_dump())
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=",".join(map(str, SCALES)),
                        help="comma-separated multiples of today's catalog (default 1,10,100)")
    parser.add_argument("--models-from", type=Path, default=Settings().models_dir,
                        help="built models to reuse (nlu, ranker); default the configured home's")
    parser.add_argument("--keep", type=Path, default=None, help="build into this directory and keep it")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.measure is not None:
        sys.stdout.write(json.dumps(measure_turns(args.measure)) + "\n")
        return 0
    logging.getLogger(__name__).setLevel(logging.INFO)
    scales = tuple(int(s) for s in args.scales.split(","))
    results = run(scales, args.models_from, args.keep)
    sys.stdout.write(
        f"naviyam scale bench: {len(REQUESTS)} requests x {ROUNDS} rounds per size, process CPU per turn\n"
        f"dense index embeddings: {EMBEDDINGS}\nBM25: {BM25_TOKENS}\n"
        f"reused from {args.models_from}: {', '.join(REUSED_MODELS)} (trained at 1x); built per size: data, "
        f"candidate funnels, BM25, FAISS\nchildren per size: "
        f"{', '.join(f'{s}x schools -> {user_scale(s)}x children' for s in scales)} (MAX_USER_SCALE)\n\n"
        f"{table(results)}\n\n{ratio_line(results)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
