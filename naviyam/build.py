"""Build every artefact the chatbot needs, in dependency order, skipping what already exists.

data (parquet) → Feast feature store (apply + materialise) → NLU corpus + fast NLU → default LLM →
retrieval index → candidate structures → Wide&Deep (+ONNX, trained on Feast point-in-time features). Each artefact directory carries a meta.json with its version, so "exists" means
"meta.json written", i.e. the previous build of that part finished.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from naviyam.candidates.generator import CandidateGenerator
from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.data.generate import build_dataset, load_events
from naviyam.data.nlu_corpus import build_nlu_corpus
from naviyam.evaluation.nlu_metrics import evaluate_nlu
from naviyam.features import build_features
from naviyam.features.store import feature_store, require_built
from naviyam.jsonl import read_jsonl  # noqa: F401 - re-exported: naviyam.cli and tests still import it from here
from naviyam.llm import build_default_llm
from naviyam.nlu.fast import FastNLU
from naviyam.preprocess import Preprocessor
from naviyam.registry import NoVersionError, adapter_registry
from naviyam.retrieval.embedder import make_embedder
from naviyam.retrieval.retriever import Retriever
from naviyam.storage import events_target

log = logging.getLogger(__name__)
PARTS = ("data", "features", "nlu", "llm", "retriever", "candidates", "ranker")


def _done(path: Path) -> bool:
    return (path / "meta.json").exists()


def build_data(settings: Settings, force: bool = False) -> dict:
    marker = settings.data_dir / "meta.json"
    if marker.exists() and not force:
        return json.loads(marker.read_text())
    summary = build_dataset(settings)
    summary["nlu_corpus"] = build_nlu_corpus(settings.data_dir / "nlu", seed=settings.seed)
    marker.write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    return summary


def train_nlu(settings: Settings, force: bool = False) -> dict:
    out = settings.models_dir / "nlu"
    if FastNLU.is_saved(out) and not force:
        return json.loads((out / "meta.json").read_text())
    corpus = settings.data_dir / "nlu"
    preprocess = Preprocessor()
    nlu = FastNLU.train(read_jsonl(corpus / "nlu_train.jsonl"), seed=settings.seed, preprocess=preprocess)
    nlu.save(out)
    metrics = evaluate_nlu(nlu, read_jsonl(corpus / "nlu_test.jsonl"), preprocess)
    log.info("NLU held-out: intent %.3f, food_category %.3f",
             metrics["intent_accuracy"], metrics["food_category_accuracy"])
    (out / "eval.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2))
    return metrics


def build_llm(settings: Settings, force: bool = False) -> str:
    """The offline default causal LM (tiny GPT-NeoX + our tokenizer), unless weights are mounted."""
    if settings.llm.base_path:
        return settings.llm.base_path  # mounted production weights: nothing to build
    return str(build_default_llm(settings, force=force))


def train_lora(settings: Settings, init_from: str | None = "current", promote: bool = True) -> dict:
    """LoRA on good conversations from the event store (synthetic ones on a fresh install),
    registered as the next adapter version; production when it beats the base (and ``promote``).
    ``init_from``: ``current`` (the production adapter, if any), an adapter directory, or none."""
    # torch and peft are imported only when a LoRA run is asked for.
    from naviyam.llm.lora import run_lora

    base = settings.llm.resolved_base_path(settings.models_dir)
    if not base.exists():
        build_llm(settings)
    registry, model = adapter_registry(settings)
    if init_from == "current":
        try:
            start = registry.resolve(model)
        except NoVersionError:
            start = None
    else:
        start = Path(init_from) if init_from not in (None, "none") else None
    return run_lora(settings, events_target(settings), base, init_from=start, promote=promote,
                    registry=registry, adapter_model=model)


def build_retriever(settings: Settings, force: bool = False) -> str:
    out = settings.models_dir / "retriever"
    if not (_done(out) and not force):
        catalog = Catalog.load(settings.data_dir)
        Retriever.build(catalog, make_embedder(settings.retrieval), settings.retrieval).save(out)
    return json.loads((out / "meta.json").read_text())["version"]


def build_candidates(settings: Settings, force: bool = False) -> str:
    out = settings.models_dir / "candidates"
    if not (_done(out) and not force):
        catalog = Catalog.load(settings.data_dir)
        gen = CandidateGenerator.build(catalog, load_events(settings.data_dir), settings.candidates)
        gen.save(out)
        gen.close()
    return json.loads((out / "meta.json").read_text())["version"]


def build_feature_store(settings: Settings, force: bool = False) -> dict:
    """Export feature sources, `feast apply`, materialise into the online store."""
    marker = settings.state_dir / "features.json"
    if marker.exists() and not force:
        return json.loads(marker.read_text())
    report = build_features(settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    return report


def train_ranker(settings: Settings, force: bool = False, init_from: Path | None = None) -> dict:
    # torch is imported only when the ranker is trained (`naviyam data build` and the rest need none)
    from naviyam.ranking.train import train_ranker as _train

    out = settings.models_dir / "ranker"
    if _done(out) and not force:
        return json.loads((out / "meta.json").read_text())
    # The store `build_feature_store` built holds exactly these events: the join reads it directly.
    require_built(settings)
    catalog = Catalog.load(settings.data_dir)
    return _train(settings, catalog, load_events(settings.data_dir), out, init_from=init_from,
                  feature_store=feature_store(settings))


def build_all(settings: Settings, force: bool = False) -> dict:
    steps = {
        "data": build_data, "features": build_feature_store, "nlu": train_nlu, "llm": build_llm,
        "retriever": build_retriever,
        "candidates": build_candidates, "ranker": train_ranker,
    }
    report = {}
    for name, step in steps.items():
        start = time.perf_counter()
        step(settings, force=force)
        report[name] = round(time.perf_counter() - start, 1)
        log.info("built %s in %.1fs", name, report[name])
    return report
