"""LoRA retraining of the chatbot LM on good conversations; the adapters are versions of the registry.

    result = run_lora(settings, events_db, base_path, init_from=None, samples=None,
                      registry=ModelRegistry.from_settings(settings))   # or adapter_dir=<model dir>

1. Good conversations: an interaction whose feedback has satisfaction >= 4.0, in
   which the child selected one of the shown shops, answered in <= 3 s, and whose logged answer
   is still grounded in the catalog. The retrain pipeline passes the ones it selected as
   ``samples`` (its LoRA data, JSONL {instruction, input, output, request_id}): exactly those are
   trained on, and the event store only gives each its logged turn (intent, entities, the shops
   the answer showed) to rebuild the grounded prompt. Without ``samples`` (``naviyam train lora``)
   they are selected from the event store here. Fewer than ``lora_min_good_conversations`` (a
   fresh install): bootstrap from synthetic good conversations (NLU corpus + grounded template
   answers over the real catalog); ``meta.json`` says which (``data_source``, ``samples``).
2. Instruction data {instruction, input, output}: the NLG prompt (question + grounded facts) ->
   the answer, plus NLU replay (message -> JSON) so step 4 does not forget.
3. LoRA r=16, alpha=32, dropout 0.1 on q/k/v/o, mapped to the architecture (GPT-NeoX/Polyglot:
   fused ``query_key_value`` + ``dense``; LLaMA/Qwen/A.X-style: ``q_proj``... ``o_proj``).
   Incremental: ``init_from`` continues training an existing adapter.
4. Validation perplexity (answer tokens only) of the base, the starting adapter and the new one.
5. Registered as the next version of the registry's ``lora`` model (``naviyam.registry``: the
   same versions, pointers, backends and audit log as the ranker's); its ``production`` pointer,
   the adapter the LLM serves, switches only when the new adapter beats the base and the adapter
   it started from on the validation set (and ``promote`` is asked for).
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

from naviyam.data.catalog import Catalog
from naviyam.events import EventStore, traffic_of
from naviyam.good_conversation import GOOD, GoodConversationRule
from naviyam.jsonl import read_jsonl
from naviyam.llm.data import (
    Conversation, SyntheticConversations, conversation_from_interaction, nlg_example, nlu_example,
)
from naviyam.llm.prompts import InstructionExample
from naviyam.llm.settings import LLMSettings, llm_settings
from naviyam.llm.training import batches, cpu_threads, encode, perplexity, train_steps
from naviyam.llm.wrapper import load_base, read_meta
from naviyam.registry import LORA, ModelRegistry, registry_of
from naviyam.storage import store_exists

log = logging.getLogger(__name__)

META_FILE = "meta.json"
# Fused or split attention projections (q/k/v/o) per architecture family, most specific first.
_TARGETS: tuple[tuple[set[str], list[str]], ...] = (
    ({"query_key_value", "dense"}, ["query_key_value", "dense"]),          # GPT-NeoX, Polyglot, Falcon, BLOOM
    ({"q_proj", "k_proj", "v_proj", "o_proj"}, ["q_proj", "k_proj", "v_proj", "o_proj"]),  # LLaMA, Qwen, Mistral, A.X
    ({"q_proj", "k_proj", "v_proj", "out_proj"}, ["q_proj", "k_proj", "v_proj", "out_proj"]),  # OPT, GPT-J-like
    ({"c_attn", "c_proj"}, ["c_attn", "attn.c_proj"]),                     # GPT-2
)


class LoRAError(RuntimeError):
    pass


# -- LoRA config ---------------------------------------------------------------------------
def target_modules_for(model) -> list[str]:
    """The design's q/k/v/o attention projections, named the way this architecture names them."""
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) or type(module).__name__.startswith("Linear")}
    for needed, targets in _TARGETS:
        if needed <= names:
            return list(targets)
    raise LoRAError(f"cannot map q/k/v/o to this architecture ({type(model).__name__}); "
                    "set llm.lora_target_modules explicitly")


def lora_config(settings: LLMSettings, model):
    return LoraConfig(
        r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout, bias="none",
        task_type="CAUSAL_LM", target_modules=settings.lora_target_modules or target_modules_for(model),
    )


# -- good conversations ------------------------------------------------------------------------
def good_conversations(store, catalog, shop_names: Sequence[str], settings: LLMSettings,
                       traffic: Sequence[str] = ("live", "simulated")) -> tuple[list[Conversation], dict]:
    """Interactions of the learned ``traffic`` kinds that pass naviyam.good_conversation's rule
    and are still grounded."""
    rule = GoodConversationRule.of(settings)

    feedback = defaultdict(list)
    for event in store.feedback():
        if event.request_id:
            feedback[event.request_id].append(event)
    reasons: Counter = Counter()
    out: list[Conversation] = []
    seen: set[tuple[str, str]] = set()
    for payload in store.interactions():
        if traffic_of(payload) not in traffic:
            reasons["other_traffic"] += 1
            continue
        events = feedback.get(payload.get("request_id") or "")
        if not events:
            reasons["no_feedback"] += 1
            continue
        shown = {s.get("shop_id") for s in payload.get("shown_recommendations") or []}
        verdict = rule.verdict([e.satisfaction_score for e in events], any(e.shop_id in shown for e in events),
                               payload.get("response_time"))
        if verdict != GOOD:
            reasons[verdict] += 1
            continue
        _add_grounded(payload, catalog, shop_names, out, seen, reasons)
    reasons["good"] = len(out)
    return out, dict(reasons)


def _add_grounded(payload: dict, catalog, shop_names: Sequence[str], out: list[Conversation],
                  seen: set[tuple[str, str]], reasons: Counter) -> None:
    """Appends the turn as a training conversation when it is still grounded and not a repeat."""
    conv = conversation_from_interaction(catalog, payload, shop_names)
    if conv is None:
        reasons["not_grounded"] += 1
        return
    key = (conv.question, conv.answer)
    if key in seen:
        reasons["duplicate"] += 1
        return
    seen.add(key)
    out.append(conv)


def conversations_from_samples(rows: Sequence[dict], store, catalog,
                               shop_names: Sequence[str]) -> tuple[list[Conversation], dict]:
    """The good conversations the retrain pipeline selected (its LoRA data), as grounded training
    conversations: the question and answer are the row's; what the answer was grounded in
    (intent, entities, the shown shops, the child) is only in the logged turn, found by
    ``request_id``. A row without one, or no longer grounded in the catalog, is left out."""
    wanted = {row.get("request_id") for row in rows}
    turns = {p.get("request_id"): p for p in store.interactions() if p.get("request_id") in wanted} if store else {}
    reasons: Counter = Counter()
    out: list[Conversation] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        turn = turns.get(row.get("request_id"))
        if turn is None:
            reasons["no_logged_turn"] += 1
            continue
        _add_grounded({**turn, "user_input": row.get("input"), "final_response": row.get("output")},
                      catalog, shop_names, out, seen, reasons)
    reasons["good"] = len(out)
    return out, dict(reasons)


# -- dataset ---------------------------------------------------------------------------------------
def instruction_data(convs: Sequence[Conversation], nlu_rows: Sequence[dict], replay: float,
                     rng: random.Random) -> list[InstructionExample]:
    examples = [nlg_example(c) for c in convs]
    n_nlu = min(len(nlu_rows), int(round(len(examples) * replay)))
    examples += [nlu_example(r["text"], r["intent"], r.get("entities")) for r in rng.sample(list(nlu_rows), n_nlu)]
    rng.shuffle(examples)
    return examples


def _read_rows(path: Path) -> list[dict]:
    return read_jsonl(path) if path.exists() else []


def _split(items: list, fraction: float, rng: random.Random) -> tuple[list, list]:
    items = list(items)
    rng.shuffle(items)
    n_val = max(1, int(round(len(items) * fraction))) if len(items) > 1 else 0
    return items[n_val:], items[:n_val]


def prepare_data(settings, events_db: Path | None, ls: LLMSettings, samples: Path | None = None) -> dict:
    """Train and validation examples, and where they came from: the good conversations listed in
    ``samples`` when given, else those of the event store."""
    rng = random.Random(ls.lora_seed)
    catalog = Catalog.load(settings.data_dir)
    shop_names = catalog.shops["name"].tolist()
    corpus = settings.data_dir / "nlu"
    train_rows, test_rows = _read_rows(corpus / "nlu_train.jsonl"), _read_rows(corpus / "nlu_test.jsonl")
    good, reasons = [], {}
    rows = _read_rows(Path(samples)) if samples is not None else None
    store = EventStore(events_db) if events_db is not None and store_exists(events_db) else None
    try:
        if rows is not None:
            good, reasons = conversations_from_samples(rows, store, catalog, shop_names)
        elif store is not None:
            good, reasons = good_conversations(store, catalog, shop_names, ls, settings.learning.traffic)
    finally:
        if store is not None:
            store.close()
    cap = ls.lora_max_train_samples
    n_nlg = max(1, int(cap / (1 + ls.lora_nlu_replay)))
    if len(good) >= ls.lora_min_good_conversations:
        source = "feedback"
        train_convs, val_convs = _split(good, ls.lora_val_fraction, rng)
        train_convs = train_convs[:n_nlg]
        val_nlu_rows = test_rows or train_rows
    else:
        # Fresh install: synthetic good conversations; validation on the corpus's held-out split
        # (unseen phrasings), so the perplexity measures generalisation, not recall.
        source = "synthetic"
        if not train_rows:
            raise LoRAError(f"no NLU corpus at {corpus} to bootstrap from; run `naviyam build` first")
        synth = SyntheticConversations(catalog)
        pool = rng.sample(train_rows, min(len(train_rows), n_nlg * 2))
        train_convs = (good + synth.conversations(pool, ls.lora_seed))[:n_nlg]
        n_val = max(4, int(round(n_nlg * ls.lora_val_fraction / (1 - ls.lora_val_fraction))))
        val_pool = rng.sample(test_rows, min(len(test_rows), n_val * 2)) if test_rows else []
        val_convs = synth.conversations(val_pool, ls.lora_seed + 1)[:n_val]
        if not val_convs:
            train_convs, val_convs = _split(train_convs, ls.lora_val_fraction, rng)
        val_nlu_rows = test_rows or train_rows
    train = instruction_data(train_convs, train_rows, ls.lora_nlu_replay, rng)[:cap]
    val = instruction_data(val_convs, val_nlu_rows, ls.lora_nlu_replay, rng)
    return {"train": train, "val": val, "data_source": source, "n_feedback_good": len(good),
            "selection": reasons, "samples": str(samples) if samples is not None else None,
            "n_samples": len(rows) if rows is not None else None}


# -- training -------------------------------------------------------------------------------------
def _version(train: Sequence[InstructionExample], ls: LLMSettings, init_from: Path | None) -> str:
    h = hashlib.sha256(ls.model_dump_json().encode())
    h.update(str(init_from or "").encode())
    for ex in train:
        h.update(ex.output.encode())
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"lora-{stamp}-{h.hexdigest()[:6]}"


def run_lora(settings, events_db: Path | None, base_path: Path, adapter_dir: Path | None = None,
             init_from: Path | None = None, ls: LLMSettings | None = None, promote: bool = True,
             samples: Path | None = None, *, registry: ModelRegistry | None = None,
             adapter_model: str = LORA) -> dict:
    """Trains an adapter and registers it as the next version of ``registry``'s ``adapter_model``; made
    production when it improved and ``promote``. Without ``registry``, ``adapter_dir`` is the
    model directory of a file registry of its own (``naviyam.registry.registry_of``)."""
    if registry is None:
        if adapter_dir is None:
            raise LoRAError("run_lora needs a registry or an adapter_dir")
        registry, adapter_model = registry_of(adapter_dir)
    ls = ls or llm_settings(settings)
    start = time.perf_counter()
    data = prepare_data(settings, events_db, ls, samples)
    tokenizer, base, device = load_base(base_path, ls.device, ls.dtype, ls.load_in_4bit, ls.load_in_8bit)
    if ls.load_in_4bit or ls.load_in_8bit:
        base = prepare_model_for_kbit_training(base)
    base_version = read_meta(base_path).get("version") or Path(base_path).name
    init_note = None
    if init_from is not None:
        trained_on = read_meta(init_from).get("base_model")
        if not (Path(init_from) / "adapter_config.json").exists():
            raise LoRAError(f"no adapter at {init_from}")
        if trained_on and trained_on != base_version:
            # The base was rebuilt or replaced: the old adapter does not apply; start afresh.
            init_note = f"skipped {init_from}: trained on {trained_on}, base is {base_version}"
            log.warning("LoRA: %s", init_note)
            init_from = None
    torch.manual_seed(ls.lora_seed)
    if init_from is not None:
        model = PeftModel.from_pretrained(base, str(init_from), is_trainable=True)
    else:
        model = get_peft_model(base, lora_config(ls, base))
    max_len = min(ls.lora_max_length, int(getattr(base.config, "max_position_embeddings", ls.lora_max_length)))
    train = [e for e in (encode(tokenizer, ex, max_len) for ex in data["train"]) if e is not None]
    val = [e for e in (encode(tokenizer, ex, max_len) for ex in data["val"]) if e is not None]
    if not train or not val:
        raise LoRAError("no training or validation examples fit the model's context")
    pad = tokenizer.pad_token_id
    with cpu_threads(ls.lora_cpu_threads if device == "cpu" else None):
        with model.disable_adapter():
            base_ppl = perplexity(model, val, pad)
        init_ppl = perplexity(model, val, pad) if init_from is not None else None

        rng = random.Random(ls.lora_seed)
        groups = [g for _ in range(ls.lora_epochs) for g in batches(train, ls.lora_batch_size, rng)]
        losses = train_steps(model, groups, pad, ls.lora_learning_rate, ls.lora_grad_accum, ls.lora_warmup_steps,
                             desc="LoRA")
        val_ppl = perplexity(model, val, pad)
        by_task = {}
        for task in ("nlg", "nlu"):
            part = [e for e in val if e.task == task]
            if part:
                by_task[f"val_perplexity_{task}"] = round(perplexity(model, part, pad), 4)
                with model.disable_adapter():
                    by_task[f"base_val_perplexity_{task}"] = round(perplexity(model, part, pad), 4)

    name = _version(data["train"], ls, init_from)
    improved = val_ppl < base_ppl and (init_ppl is None or val_ppl < init_ppl)
    meta = {
        "version": name,
        "base_model": base_version,
        "base_path": str(base_path),
        "metrics": {"val_perplexity": round(val_ppl, 4), "base_val_perplexity": round(base_ppl, 4),
                    **({"init_val_perplexity": round(init_ppl, 4)} if init_ppl is not None else {}),
                    **by_task, "train_loss_first": round(losses[0], 4), "train_loss_last": round(losses[-1], 4)},
        "n_train": len(train), "n_val": len(val),
        "n_train_nlg": sum(e.task == "nlg" for e in train), "n_train_nlu": sum(e.task == "nlu" for e in train),
        "data_source": data["data_source"], "n_feedback_good": data["n_feedback_good"],
        "selection": data["selection"], "samples": data["samples"], "n_samples": data["n_samples"],
        "init_from": str(init_from) if init_from else None,
        **({"init_skipped": init_note} if init_note else {}),
        "lora": {"r": ls.lora_r, "alpha": ls.lora_alpha, "dropout": ls.lora_dropout,
                 "target_modules": sorted(model.peft_config[model.active_adapter].target_modules),
                 "epochs": ls.lora_epochs, "learning_rate": ls.lora_learning_rate, "batch_size": ls.lora_batch_size,
                 "grad_accum": ls.lora_grad_accum, "updates": len(losses)},
        "device": device, "improved": improved,
        "seconds": round(time.perf_counter() - start, 2),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    promoted = bool(promote and improved)
    with tempfile.TemporaryDirectory(prefix=".training-") as staging:
        model.save_pretrained(staging)
        (Path(staging) / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        # meta.json's "version" is the adapter's own name; the registry numbers it (registry.json).
        version = registry.register(adapter_model, Path(staging), meta["metrics"], adapter_version=name,
                                    base_model=base_version, improved=improved, data_source=data["data_source"])
    if promoted:
        registry.promote(adapter_model, version, reason=f"val perplexity {val_ppl:.3f} < base {base_ppl:.3f}")
    log.info("LoRA %s = %s %s (%s data, %d train): val perplexity %.3f (base %.3f%s) in %.1fs%s", name,
             adapter_model, version, data["data_source"], len(train), val_ppl, base_ppl,
             f", start {init_ppl:.3f}" if init_ppl is not None else "", meta["seconds"],
             ", now production" if promoted else "")
    return {**meta, "version": version, "name": name, "path": str(registry.version_dir(adapter_model, version)),
            "promoted": promoted}
