"""The chatbot's language model (steps 4 and 7 with an LLM, and LoRA retraining).

Entry points (imports are lazy: ``import naviyam.llm`` does not load torch):

- ``build_default_llm(settings) -> Path``: the offline default model (tiny GPT-NeoX + our BPE
  tokenizer) under ``models_dir/llm/base``; kept when already built from the same data.
- ``train_lora(settings, events_db, base_path, adapter_dir, init_from=None, samples=None) -> dict``:
  LoRA on good conversations (those listed in ``samples``, the retrain pipeline's LoRA data, else
  the event store's; synthetic ones on a fresh install), saved as ``adapter_dir/<version>/`` and
  made ``current`` when it beats the base on validation perplexity.
- ``load_llm(settings) -> LLM``: base (+ the registry's current adapter) for NLU/NLG.

Modules: ``settings`` (LLMSettings), ``prompts``, ``data``, ``tiny``, ``wrapper`` (LLM),
``training``, ``lora`` (LoRA runs; adapters are versions of the registry's ``lora`` model), ``gpu_smoke``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from naviyam.jsonl import read_jsonl
from naviyam.llm.settings import LLMSettings, llm_settings

if TYPE_CHECKING:
    from naviyam.llm.wrapper import LLM

__all__ = ["LLMSettings", "build_default_llm", "llm_settings", "load_llm", "train_lora"]


def build_default_llm(settings, force: bool = False, llm: LLMSettings | None = None) -> Path:
    """Build the offline default LM at ``settings.models_dir/"llm"/"base"`` from the NLU corpus and
    the catalog under ``settings.data_dir`` (both from ``naviyam build``'s data step). Deterministic;
    skipped when ``meta.json`` there was built from the same data and settings."""
    from naviyam.data.catalog import Catalog
    from naviyam.llm.tiny import build_tiny  # torch: only when the default LM is (re)built

    ls = llm or llm_settings(settings)
    corpus = settings.data_dir / "nlu" / "nlu_train.jsonl"
    if not corpus.exists():
        raise FileNotFoundError(f"NLU corpus {corpus} missing; build the data first (`naviyam build`)")
    catalog = Catalog.load(settings.data_dir)
    return build_tiny(settings.models_dir / "llm" / "base", read_jsonl(corpus), catalog, ls.tiny, force=force)


def train_lora(settings, events_db: Path | None, base_path: Path, adapter_dir: Path, init_from: Path | None = None,
               *, samples: Path | None = None, llm: LLMSettings | None = None, promote: bool = True) -> dict:
    """LoRA retraining; returns the adapter's meta.json plus ``path`` and ``promoted``.

    ``samples``: a JSONL of good conversations {instruction, input, output, request_id} to train
    on; ``events_db`` then only supplies their logged turns. Without it the event store's good
    conversations are selected here."""
    from naviyam.llm.lora import run_lora

    return run_lora(settings, events_db or None, Path(base_path), Path(adapter_dir),
                    Path(init_from) if init_from else None, ls=llm or llm_settings(settings), promote=promote,
                    samples=Path(samples) if samples is not None else None)


def load_llm(settings, llm: LLMSettings | None = None) -> "LLM":
    """The configured base model (mounted weights or the tiny default) + the registry's production
    ``lora`` adapter."""
    from naviyam.llm.wrapper import LLM  # torch/transformers/peft: only a process that runs the LLM
    from naviyam.registry import adapter_registry  # registry -> config -> this package's settings

    ls = llm or llm_settings(settings)
    registry, model = adapter_registry(settings, ls)
    return LLM(ls.resolved_base_path(settings.models_dir), registry=registry, adapter_model=model, settings=ls)
