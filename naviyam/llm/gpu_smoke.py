"""GPU smoke test of the real model path: load, one NLU and one NLG generation, a 5-step LoRA run.

    python -m naviyam.llm.gpu_smoke --base /models/KoAlpaca-Polyglot-5.8B [--adapter DIR] [--4bit]
    NAVIYAM_LLM__BASE_PATH=/models/ax-3.1-light python -m naviyam.llm.gpu_smoke

The base path comes from ``--base``, else ``NAVIYAM_LLM__BASE_PATH`` / the config's
``llm.base_path``; the adapter from ``--adapter``, else the registry's ``current`` one (if any).
Prints timings and a JSON summary. Exit codes: 0 ok, 2 no CUDA, 3 no weights at the path,
1 a step failed. ``--allow-cpu`` runs the same steps on CPU (e.g. with the tiny default, to check
the script itself); its timings say nothing about the GPU.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from naviyam.schemas import Recommendation

NLU_TEXT = "급식카드 되는 치킨집 추천해줘"


def _settings():
    from naviyam.config import Settings

    settings = Settings.load()  # NAVIYAM_LLM__BASE_PATH included: load() reads the env
    return settings, settings.llm


def sample_recommendations() -> list[Recommendation]:
    """Two chicken shops as the ranker would return them: the facts of the smoke test's NLG prompt
    and of the NLG grounding tests (tests/llm/test_nlg_llm.py)."""
    from naviyam.schemas import MenuItem, Recommendation

    return [
        Recommendation(rank=1, shop_id="shop_0001", name="바삭치킨 역삼점", category="치킨", address="역삼로 1",
                       walk_minutes=5, distance_m=335, menus=[MenuItem(name="1인 순살 세트", price=8500)],
                       min_price=8500, accepts_meal_card=True, is_good_influence_shop=True,
                       opening_hours="15:00-01:00", rating=4.4, personalized_score=0.9),
        Recommendation(rank=2, shop_id="shop_0002", name="학교앞통닭 대치점", category="치킨", address="대치로 2",
                       walk_minutes=8, distance_m=536, menus=[MenuItem(name="반반치킨", price=9000)],
                       min_price=9000, accepts_meal_card=True, is_good_influence_shop=False,
                       opening_hours="16:00-24:00", rating=4.1, personalized_score=0.8),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="local model directory (save_pretrained layout)")
    parser.add_argument("--adapter", help="LoRA adapter directory (default: the registry's current one)")
    parser.add_argument("--4bit", dest="four_bit", action="store_true", help="load the base in 4-bit (bitsandbytes)")
    parser.add_argument("--8bit", dest="eight_bit", action="store_true", help="load the base in 8-bit (bitsandbytes)")
    parser.add_argument("--lora-steps", type=int, default=5)
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (checks the script only)")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu-smoke: no CUDA device visible to torch (torch %s, CUDA build: %s). Run it on the GPU "
              "machine, or pass --allow-cpu to check the script on CPU." % (torch.__version__, torch.version.cuda),
              file=sys.stderr)
        return 2
    settings, ls = _settings()
    base = Path(args.base) if args.base else ls.resolved_base_path(settings.models_dir)
    if not (base / "config.json").exists():
        print(f"gpu-smoke: no model weights at {base} (config.json missing). Mount the model (e.g. "
              "KoAlpaca-Polyglot-5.8B or A.X 3.1 Light) there and pass --base or set NAVIYAM_LLM__BASE_PATH; "
              "no model hub is reachable from these machines.", file=sys.stderr)
        return 3
    ls = ls.model_copy(update={"load_in_4bit": args.four_bit, "load_in_8bit": args.eight_bit,
                               "device": "auto" if torch.cuda.is_available() else "cpu"})

    from naviyam.llm.prompts import facts_block, nlg_prompt, nlu_prompt
    from naviyam.llm.wrapper import LLM
    from naviyam.registry import adapter_registry
    from naviyam.nlu.llm import InvalidOutput, parse_output
    from naviyam.schemas import Entities, Intent, UserProfile

    report: dict = {"base": str(base), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
        torch.cuda.reset_peak_memory_stats()

    def step(name, fn):
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        report[f"{name}_s"] = round(time.perf_counter() - start, 3)
        print(f"[gpu-smoke] {name}: {report[f'{name}_s']:.3f}s", flush=True)
        return out

    try:
        registry, model = adapter_registry(settings, ls)
        llm = step("load", lambda: LLM(base, adapter_path=args.adapter, registry=registry, adapter_model=model,
                                       settings=ls))
        report.update(version=llm.version, device=llm.device)

        gen = step("nlu_generate", lambda: llm.complete(nlu_prompt(NLU_TEXT), task="nlu", max_time=30))
        try:
            parsed = parse_output(gen.text)
            report["nlu"] = {"intent": parsed.intent.value, "entities": parsed.entities.model_dump(exclude_none=True)}
        except InvalidOutput as exc:
            report["nlu"] = {"invalid": str(exc), "text": gen.text[:200]}
        report["nlu_tokens"] = len(gen.token_ids)

        recs = sample_recommendations()
        profile = UserProfile(user_id="smoke", age=11, school_id="school_01", meal_card_balance=42000)
        ents = Entities(food_category="치킨", payment_method="meal_card")
        prompt = nlg_prompt(NLU_TEXT, facts_block(Intent.FOOD_RECOMMENDATION, ents, recs, profile, "none", True))
        gen = step("nlg_generate", lambda: llm.complete(prompt, task="nlg", max_time=60, seed=0))
        from naviyam.nlg.grounding import check_grounding

        report["nlg"] = {"text": gen.text[:300], "tokens": len(gen.token_ids),
                         "grounding_violations": check_grounding(gen.text, recs, [r.name for r in recs],
                                                                 {42000, 9500}).violations}
        del llm
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

        report["lora"] = step("lora_steps", lambda: _lora_steps(base, ls, args.lora_steps, recs, profile, ents))
        if torch.cuda.is_available():
            report["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    except Exception as exc:  # noqa: BLE001 - report what failed, then exit non-zero
        report["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 1
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def _lora_steps(base: Path, ls, steps: int, recs, profile, ents) -> dict:
    """``steps`` LoRA updates (design config: r=16, alpha=32, q/k/v/o) on a few grounded examples."""
    import torch
    from peft import get_peft_model

    from naviyam.llm.data import Conversation, make_nlu, nlg_example, nlu_example
    from naviyam.llm.lora import lora_config
    from naviyam.llm.training import encode, train_steps
    from naviyam.llm.wrapper import load_base
    from naviyam.nlg.normalizer import normalise_for_children
    from naviyam.nlg.templates import AnswerInput, compose_answer
    from naviyam.schemas import Intent

    tokenizer, model, _ = load_base(base, ls.device, ls.dtype, ls.load_in_4bit, ls.load_in_8bit)
    if ls.load_in_4bit or ls.load_in_8bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    config = lora_config(ls, model)
    model = get_peft_model(model, config)
    nlu = make_nlu(Intent.FOOD_RECOMMENDATION, ents)
    answer = normalise_for_children(compose_answer(AnswerInput(nlu=nlu, recommendations=recs, profile=profile)), "치킨")
    examples = [nlg_example(Conversation(NLU_TEXT, nlu, recs, profile, answer)),
                nlu_example(NLU_TEXT, "FOOD_RECOMMENDATION", ents)]
    data = [e for e in (encode(tokenizer, ex, 512) for ex in examples) if e is not None]
    groups = [data[i % len(data): i % len(data) + 1] for i in range(steps)]
    start = time.perf_counter()
    losses = train_steps(model, groups, tokenizer.pad_token_id, 1e-4, desc="smoke LoRA")
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"target_modules": sorted(config.target_modules), "trainable_params": trainable,
            "losses": [round(x, 4) for x in losses], "seconds_per_step": round(seconds / max(steps, 1), 3)}


if __name__ == "__main__":
    sys.exit(main())
