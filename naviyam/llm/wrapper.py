"""``LLM``: one causal LM (+ optional LoRA adapter) shared by the NLU and NLG steps.

    llm = LLM(base_path, registry=ModelRegistry.from_settings(settings))   # or adapter_path=..., or neither
    text = llm.generate(prompt, task="nlu")               # design defaults per task
    llm.reload()                                          # production adapter switched? swap it in

- Weights come from a local directory (mounted weights or the tiny default); never a hub id.
- Device: ``cuda`` when available, else ``cpu`` (``pick_device``). 4-/8-bit loading uses
  bitsandbytes and needs CUDA; asking for it elsewhere is a clear ``LLMConfigError``.
- Thread-safe: generation and adapter swaps hold one lock; a caller that cannot get the lock
  within its time budget gets ``LLMBusyError`` instead of waiting behind another request.
- The adapter is the ``production`` version of the registry's ``lora`` model (``naviyam.registry``,
  where ``naviyam train lora`` and the retrain pipeline register and promote it); ``registry_dir``
  names a model directory of a file registry of its own instead (``registry_of``).
- ``reload()`` swaps the adapter inside the loaded ``PeftModel`` (``load_adapter`` +
  ``set_adapter`` + ``delete_adapter``): the base model stays loaded.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from naviyam.llm.settings import LLMSettings
from naviyam.llm.training import tokenize
from naviyam.registry import LORA, ModelRegistry, registry_of

log = logging.getLogger(__name__)

Task = Literal["nlu", "nlg"]


class LLMConfigError(RuntimeError):
    """The model cannot be loaded as configured (missing weights, no CUDA for 4-bit, ...)."""


class LLMBusyError(TimeoutError):
    """Another generation holds the model longer than this call's time budget."""


class PromptTooLongError(ValueError):
    pass


def pick_device(preference: str = "auto") -> str:
    if preference == "cuda" and not torch.cuda.is_available():
        raise LLMConfigError("device 'cuda' requested but torch sees no CUDA device")
    if preference in ("cpu", "cuda"):
        return preference
    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(name: str, device: str):
    if name == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, name)


def quantization_config(load_in_4bit: bool, load_in_8bit: bool, device: str):
    """bitsandbytes config, or None; only on CUDA (bitsandbytes has no CPU path we support)."""
    if not (load_in_4bit or load_in_8bit):
        return None
    if load_in_4bit and load_in_8bit:
        raise LLMConfigError("choose one of load_in_4bit and load_in_8bit")
    if device != "cuda":
        raise LLMConfigError(
            f"load_in_{'4' if load_in_4bit else '8'}bit needs a CUDA GPU (bitsandbytes); this process runs on "
            f"{device}. Turn the flag off to load the model in full precision.")
    try:
        # bitsandbytes is optional (CUDA machines only): looked for only when 4-/8-bit is asked for.
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise LLMConfigError(f"4-/8-bit loading needs the bitsandbytes package: {exc}") from exc
    if load_in_4bit:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=_dtype("auto", "cuda") or torch.bfloat16)
    return BitsAndBytesConfig(load_in_8bit=True)


def read_meta(path: Path) -> dict:
    meta = Path(path) / "meta.json"
    return json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else {}


def load_base(path: str | Path, device: str = "auto", dtype: str = "auto",
              load_in_4bit: bool = False, load_in_8bit: bool = False):
    """(tokenizer, model, device) from a local directory saved with ``save_pretrained``."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise LLMConfigError(
            f"no model weights at {path} (config.json missing). Mount the model there, or build the "
            "offline default with `naviyam build` (naviyam.llm.build_default_llm).")
    device = pick_device(device)
    quant = quantization_config(load_in_4bit, load_in_8bit, device)
    kwargs: dict = {"dtype": _dtype(dtype, device)}
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map={"": 0})
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if quant is None:
        model.to(device)
    model.eval()
    return tokenizer, model, device


@dataclass
class Generation:
    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)   # of the chosen tokens, from the raw logits
    finished: bool = True        # ended with EOS (not cut by max tokens or the time limit)
    timed_out: bool = False
    seconds: float = 0.0
    n_prompt_tokens: int = 0

    @property
    def mean_prob(self) -> float:
        """Geometric mean probability of the generated tokens (1.0 when unknown)."""
        if not self.logprobs:
            return 1.0
        return math.exp(sum(self.logprobs) / len(self.logprobs))


def _adapter_name(version: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in version) or "adapter"


class LLM:
    def __init__(
        self,
        base_path: str | Path,
        adapter_path: str | Path | None = None,
        registry_dir: str | Path | None = None,
        settings: LLMSettings | None = None,
        device: str | None = None,
        load_in_4bit: bool | None = None,
        load_in_8bit: bool | None = None,
        *,
        registry: ModelRegistry | None = None,
        adapter_model: str = LORA,
        channel: str = "production",
    ):
        self.settings = settings or LLMSettings()
        s = self.settings
        self.base_path = Path(base_path)
        if registry is None and registry_dir:
            registry, adapter_model = registry_of(registry_dir)
        self.registry, self.adapter_model, self.channel = registry, adapter_model, channel
        self._lock = threading.Lock()
        self.tokenizer, self.base_model, self.device = load_base(
            self.base_path, device or s.device, s.dtype,
            s.load_in_4bit if load_in_4bit is None else load_in_4bit,
            s.load_in_8bit if load_in_8bit is None else load_in_8bit,
        )
        self.model = self.base_model           # a PeftModel around base_model once an adapter is loaded
        meta = read_meta(self.base_path)
        self.base_version: str = meta.get("version") or self.base_path.name
        self.adapter_version: str | None = None
        self.adapter_path: Path | None = None
        self.base_loads = 1
        target = Path(adapter_path) if adapter_path else self._registry_current()
        if target is not None and self.compatible(target):
            self._swap_adapter(target)

    # -- identity -----------------------------------------------------------------------
    @property
    def version(self) -> str:
        return f"{self.base_version}+{self.adapter_version}" if self.adapter_version else self.base_version

    @property
    def max_positions(self) -> int:
        cfg = self.base_model.config
        return int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 2048))

    # -- adapters -------------------------------------------------------------------------
    def _registry_current(self) -> Path | None:
        """The directory of the channel's adapter version; None when there is none (yet)."""
        if self.registry is None or not self.settings.use_adapter:
            return None
        version = self.registry.current_version(self.adapter_model, self.channel)
        return self.registry.version_dir(self.adapter_model, version) if version else None

    def _version_of(self, path: Path) -> str:
        """The registry's version for one of its directories, else the adapter's own meta.json name."""
        if self.registry is not None and path.parent == self.registry.model_root(self.adapter_model):
            return path.name
        return read_meta(path).get("version") or path.name

    def compatible(self, adapter: Path) -> bool:
        """An adapter trained on another base (e.g. before the tiny default was rebuilt) is not
        loaded: its weights would be meaningless on this one."""
        trained_on = read_meta(adapter).get("base_model")
        if trained_on and trained_on != self.base_version:
            log.warning("adapter %s was trained on %s, not %s: not loaded", adapter, trained_on, self.base_version)
            return False
        return True

    def _swap_adapter(self, path: Path) -> None:
        version = self._version_of(path)
        name = _adapter_name(version)
        if isinstance(self.model, PeftModel):
            old = self.model.active_adapter
            self.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
            self.model.set_adapter(name)
            if old != name:
                self.model.delete_adapter(old)
        else:
            self.model = PeftModel.from_pretrained(self.base_model, str(path), adapter_name=name, is_trainable=False)
        self.model.eval()
        self.adapter_version, self.adapter_path = version, path
        log.info("LLM adapter %s active (base %s)", version, self.base_version)

    def reload(self, adapter_path: str | Path | None = None) -> bool:
        """Activate ``adapter_path`` or the registry's production adapter if it changed; the base
        model is not reloaded. Returns True when the active adapter changed."""
        target = Path(adapter_path) if adapter_path else self._registry_current()
        with self._lock:
            if target is None:
                if self.adapter_version is None:
                    return False
                if isinstance(self.model, PeftModel):
                    self.model = self.model.unload()   # removes the LoRA layers, keeps the same base
                self.adapter_version = self.adapter_path = None
                return True
            version = self._version_of(target)
            if version == self.adapter_version or not self.compatible(target):
                return False
            self._swap_adapter(target)
            return True

    # -- generation ----------------------------------------------------------------------------
    def task_defaults(self, task: Task) -> dict:
        s = self.settings
        if task == "nlu":
            return {"temperature": s.nlu_temperature, "top_p": s.nlu_top_p, "do_sample": s.nlu_do_sample,
                    "max_length": s.nlu_max_length, "max_time": s.nlu_timeout_s}
        return {"temperature": s.nlg_temperature, "top_p": s.nlg_top_p, "do_sample": s.nlg_do_sample,
                "max_new_tokens": s.nlg_max_new_tokens, "max_time": s.nlg_timeout_s}

    def generate(self, prompt: str, temperature: float | None = None, top_p: float | None = None,
                 max_new_tokens: int | None = None, do_sample: bool | None = None, *, task: Task = "nlg",
                 max_time: float | None = None, seed: int | None = None) -> str:
        return self.complete(prompt, temperature, top_p, max_new_tokens, do_sample, task=task,
                             max_time=max_time, seed=seed).text

    def complete(self, prompt: str, temperature: float | None = None, top_p: float | None = None,
                 max_new_tokens: int | None = None, do_sample: bool | None = None, *, task: Task = "nlg",
                 max_time: float | None = None, seed: int | None = None, lock_timeout: float | None = None) -> Generation:
        """Generate a continuation of ``prompt``; unset arguments take the task's defaults
        (NLU: temperature 0.1, at most ``nlu_max_length`` tokens in all; NLG: temperature 0.7,
        top_p 0.9, sampling). ``max_time`` bounds the generation itself; the lock wait is bounded
        by ``lock_timeout`` (default: ``max_time``)."""
        d = self.task_defaults(task)
        temperature = d["temperature"] if temperature is None else temperature
        top_p = d["top_p"] if top_p is None else top_p
        do_sample = d["do_sample"] if do_sample is None else do_sample
        max_time = d["max_time"] if max_time is None else max_time
        ids = tokenize(self.tokenizer, prompt)
        limit = min(d.get("max_length", self.max_positions), self.max_positions)
        if max_new_tokens is None:
            max_new_tokens = d.get("max_new_tokens") or (limit - len(ids))
        max_new_tokens = min(max_new_tokens, self.max_positions - len(ids))
        if max_new_tokens < 1:
            raise PromptTooLongError(f"prompt of {len(ids)} tokens leaves no room (limit {limit})")
        # ``max_time`` is a deadline for the whole call: time spent waiting for the lock is
        # taken off the generation's own limit.
        asked = time.perf_counter()
        wait = max_time if lock_timeout is None else lock_timeout
        if not self._lock.acquire(timeout=wait if wait and wait > 0 else -1):
            raise LLMBusyError(f"model busy for more than {wait:.2f}s")
        try:
            start = time.perf_counter()
            if max_time:
                max_time -= start - asked
                if max_time <= 0:
                    raise LLMBusyError("no time left after waiting for the model")
            if seed is not None:
                torch.manual_seed(seed)
            input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
            kwargs = {
                "input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                "max_new_tokens": max_new_tokens, "do_sample": do_sample,
                "eos_token_id": self.tokenizer.eos_token_id, "pad_token_id": self.tokenizer.pad_token_id,
                "return_dict_in_generate": True, "output_logits": True,
            }
            if do_sample:
                kwargs.update(temperature=max(temperature, 1e-4), top_p=top_p)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            if max_time:
                kwargs["max_time"] = max_time
            with torch.inference_mode():
                out = self.model.generate(**kwargs)
            seconds = time.perf_counter() - start
        finally:
            self._lock.release()
        new = out.sequences[0, len(ids):].tolist()
        logprobs = []
        for step, token in enumerate(new):
            if step < len(out.logits):
                logprobs.append(float(torch.log_softmax(out.logits[step][0].float(), -1)[token]))
        eos = self.tokenizer.eos_token_id
        finished = bool(new) and new[-1] == eos
        if finished:
            new, logprobs = new[:-1], logprobs   # the EOS probability counts towards confidence
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        timed_out = bool(max_time) and not finished and seconds >= max_time * 0.98
        return Generation(text=text, token_ids=new, logprobs=logprobs, finished=finished, timed_out=timed_out,
                          seconds=seconds, n_prompt_tokens=len(ids))
