"""A small world for the pipeline runs: generated data, a deliberately weak production ranker
(1 epoch on the first three weeks) where ``naviyam build`` puts it, a tiny base language model
with fast LoRA settings (when ``naviyam.llm`` provides LoRA training), and a Settings YAML."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from naviyam.config import Settings
from naviyam.data.catalog import Catalog
from naviyam.data.generate import build_dataset, load_events
from naviyam.ranking.train import train_ranker

SMALL = {"n_schools": 3, "n_shops": 90, "n_users": 160, "days": 28}
# Seconds, not minutes, on two shared cores: a toy base model and a few LoRA steps.
FAST_LLM = {
    "tiny": {"steps": 5, "vocab_size": 400, "hidden_size": 32, "num_layers": 1, "num_heads": 2,
             "intermediate_size": 64, "block_size": 64, "batch_size": 4, "max_nlu_rows": 150},
    "lora_epochs": 1, "lora_max_train_samples": 24, "lora_batch_size": 4, "lora_grad_accum": 1,
    "lora_max_length": 128, "lora_warmup_steps": 0, "lora_learning_rate": 0.005,
}


def _lora_available() -> bool:
    try:
        from naviyam.llm import build_default_llm, train_lora  # noqa: F401
    except ImportError:
        return False
    return True


LORA = _lora_available()


@pytest.fixture(scope="session")
def loop_home(tmp_path_factory) -> tuple[Settings, Path]:
    home = tmp_path_factory.mktemp("loop")
    config = home / "config.yaml"
    config.write_text(yaml.safe_dump({"log_level": "WARNING", "llm": FAST_LLM}, allow_unicode=True))
    settings = Settings.load(config, home=home)
    build_dataset(settings, **SMALL)
    if LORA:
        from naviyam.data.nlu_corpus import build_nlu_corpus
        from naviyam.llm import build_default_llm
        from naviyam.llm.settings import LLMSettings

        build_nlu_corpus(settings.data_dir / "nlu", seed=settings.seed, n_train=200, n_test=20)
        build_default_llm(settings, llm=LLMSettings.model_validate(FAST_LLM))
    catalog, events = Catalog.load(settings.data_dir), load_events(settings.data_dir)
    weak = settings.model_copy(update={"ranking": settings.ranking.model_copy(update={"epochs": 1})})
    early = events[events["timestamp"] < events["timestamp"].max() - pd.Timedelta(days=7)]
    train_ranker(weak, catalog, early, settings.models_dir / "ranker", evaluate=False)
    return settings, config
