"""Fixtures for the language-model tests.

- ``micro_base``: a micro GPT-NeoX (hidden 32) with a BPE tokenizer trained here on prompt text,
  saved with ``save_pretrained``; made in about a second, for the wrapper / LoRA / adapter tests.
- ``shipped``: the offline default exactly as ``naviyam build`` makes it (``build_default_llm`` on
  the built data set under ``var/``, kept when up to date), for the tests that must run on it.

The project runs pytest with ``--import-mode=importlib``: helpers are handed over as fixtures.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from naviyam.config import Settings  # noqa: E402
from naviyam.llm.prompts import (  # noqa: E402
    InstructionExample, NLG_INSTRUCTION, NLU_INSTRUCTION, nlu_input, nlu_target, render,
)
from naviyam.llm.settings import LLMSettings, TinyModelSettings  # noqa: E402

MICRO_TEXTS = [
    ("급식카드 되는 치킨집 추천해줘", "FOOD_RECOMMENDATION", {"food_category": "치킨", "payment_method": "meal_card"}),
    ("떡볶이 먹고 싶어", "FOOD_RECOMMENDATION", {"food_category": "분식", "menu_item": "떡볶이"}),
    ("안녕 나비얌", "GREETING", {}),
    ("만원으로 뭐 먹지", "BUDGET_INQUIRY", {"budget": 10000}),
    ("짜장면 파는 곳 알려줘", "MENU_INQUIRY", {"food_category": "중식", "menu_item": "짜장면"}),
    ("잘 있어", "GOODBYE", {}),
]


@pytest.fixture(scope="session")
def micro_examples() -> list[InstructionExample]:
    return [InstructionExample(NLU_INSTRUCTION, nlu_input(t), nlu_target(i, e), task="nlu") for t, i, e in MICRO_TEXTS]


@pytest.fixture(scope="session")
def micro_base(tmp_path_factory, micro_examples) -> Path:
    from naviyam.llm.tiny import make_model, train_tokenizer

    out = tmp_path_factory.mktemp("micro_base")
    texts = [ex.prompt + ex.output for ex in micro_examples] * 3 + [render(NLG_INSTRUCTION, "")]
    tokenizer = train_tokenizer(texts, vocab_size=600)
    cfg = TinyModelSettings(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_positions=512, seed=3)
    model = make_model(cfg, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "meta.json").write_text('{"version": "micro-neox"}', encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def make_adapter(micro_base):
    """make_adapter(model_root, name, seed) -> path: a LoRA adapter of the micro base with non-zero
    weights, registered as the next version of the file registry whose model directory is
    ``model_root`` (``naviyam.registry.registry_of``); its meta.json names it ``name``."""
    import tempfile

    import torch
    from peft import get_peft_model

    from naviyam.llm.lora import lora_config
    from naviyam.llm.wrapper import load_base
    from naviyam.registry import registry_of

    def _make(root: Path, name: str, seed: int) -> Path:
        _, base, _ = load_base(micro_base, "cpu")
        model = get_peft_model(base, lora_config(LLMSettings(), base))
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param_name, param in model.named_parameters():
                if "lora_B" in param_name:
                    param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
        registry, model_name = registry_of(root)
        with tempfile.TemporaryDirectory() as staging:
            model.save_pretrained(staging)
            (Path(staging) / "meta.json").write_text(f'{{"version": "{name}"}}', encoding="utf-8")
            version = registry.register(model_name, Path(staging), adapter_version=name)
        return registry.version_dir(model_name, version)

    return _make


@pytest.fixture(scope="session")
def shipped(tmp_path_factory):
    """(settings, base_path) of the offline default built from the real data set."""
    from naviyam.build import build_data
    from naviyam.llm import build_default_llm

    settings = Settings.load()
    build_data(settings)
    return settings, build_default_llm(settings)


@pytest.fixture(scope="session")
def tiny_lora_settings() -> LLMSettings:
    """LoRA sized for a CPU test on the tiny default (the shipped defaults suit 5.8B models)."""
    return LLMSettings(lora_max_train_samples=128, lora_epochs=3, lora_batch_size=8, lora_grad_accum=1,
                       lora_learning_rate=1e-2, lora_warmup_steps=2, lora_nlu_replay=0.25,
                       lora_min_good_conversations=4)
