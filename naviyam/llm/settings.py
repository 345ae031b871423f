"""LLM settings: ``Settings.llm`` (``naviyam.config``), env ``NAVIYAM_LLM__<FIELD>``.

Defaults: NLU generation at temperature 0.1 with at most 512 tokens in
all (prompt + answer), NLG at temperature 0.7 with nucleus sampling (top_p 0.9), LoRA with r=16,
alpha=32, dropout 0.1 on the attention projections (q/k/v/o), good conversations = satisfaction
>= 4.0 + a shown shop selected + response time <= 3 s.

``base_path`` is a local directory (mounted weights such as KoAlpaca-Polyglot-5.8B or A.X 3.1
Light, never a hub id: no machine here reaches a hub). Left empty it is the small offline default
that ``naviyam.llm.build_default_llm`` builds under ``models_dir/llm/base``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field


class TinyModelSettings(BaseModel):
    """Shape and pretraining budget of the offline default (GPT-NeoX, Polyglot's architecture)."""

    vocab_size: int = 2000
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    max_positions: int = 1024
    batch_size: int = 32
    steps: int = 300
    learning_rate: float = 4e-3
    nlg_share: float = 0.1       # grounded answers per NLU corpus row in the pretraining mix
    max_nlu_rows: int = 4000
    threads: int = 1             # torch intra-op threads while pretraining (see training.cpu_threads)
    seed: int = 20260801


class LLMSettings(BaseModel):
    # -- which model ------------------------------------------------------------------------
    base_path: str | None = None        # mounted weights dir; None -> models_dir/llm/base (tiny default)
    adapter_dir: str | None = None      # a file registry's model dir for adapters; None -> the home registry's `lora`
    use_adapter: bool = True            # load the registry's production `lora` adapter when there is one
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"  # auto: bf16/fp16 on cuda, fp32 on cpu
    load_in_4bit: bool = False          # bitsandbytes, CUDA only
    load_in_8bit: bool = False          # bitsandbytes, CUDA only

    # -- step 4: NLU (design: temperature 0.1, max_length 512) -------------------------------
    nlu_temperature: float = 0.1
    nlu_top_p: float = 1.0
    nlu_do_sample: bool = True
    nlu_max_length: int = 512           # prompt + generated tokens
    nlu_timeout_s: float = 2.0          # CombinedNLU falls back to the fast NLU after this

    # -- step 7: NLG (design: temperature 0.7, nucleus sampling) ------------------------------
    nlg_enabled: bool = False           # answers stay the grounded templates unless enabled
    nlg_temperature: float = 0.7
    nlg_top_p: float = 0.9
    nlg_do_sample: bool = True
    nlg_max_new_tokens: int = 256
    nlg_timeout_s: float = 3.0          # the template answer is used after this
    nlg_max_recommendations: int = 3    # design: ranked_candidates[:3] go into the prompt

    # -- LoRA retraining ------------------------------------------------------------------
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_target_modules: list[str] | None = None   # None: q/k/v/o mapped to the architecture
    lora_epochs: int = 2
    lora_learning_rate: float = 2e-4
    lora_batch_size: int = 4
    lora_grad_accum: int = 2
    lora_warmup_steps: int = 10
    lora_max_length: int = 512
    lora_val_fraction: float = 0.15
    lora_max_train_samples: int = 2000
    lora_nlu_replay: float = 0.5        # NLU examples per NLG example, against forgetting step 4
    lora_min_good_conversations: int = 50  # fewer: bootstrap from synthetic conversations
    lora_seed: int = 7
    lora_cpu_threads: int | None = 1   # on CPU only; None leaves torch's default
    good_min_satisfaction: float = 4.0
    good_max_response_time_s: float = 3.0

    tiny: TinyModelSettings = Field(default_factory=TinyModelSettings)

    def resolved_base_path(self, models_dir: Path) -> Path:
        return Path(self.base_path) if self.base_path else Path(models_dir) / "llm" / "base"


def llm_settings(settings: Any) -> LLMSettings:
    """The LLM section of a settings object (``Settings.llm``; a mapping or a look-alike model is
    validated into one); the defaults for an object that has none."""
    value = getattr(settings, "llm", None)
    return LLMSettings() if value is None else LLMSettings.model_validate(value, from_attributes=True)
