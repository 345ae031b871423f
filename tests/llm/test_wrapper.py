"""The LLM wrapper, LoRA and registry-served adapters on a micro GPT-NeoX (real transformers + peft)."""
from __future__ import annotations

import threading

import pytest
import torch

from naviyam.llm.lora import LoRAError, lora_config, target_modules_for
from naviyam.llm.prompts import nlu_prompt
from naviyam.llm.settings import LLMSettings
from naviyam.llm.training import encode, perplexity, tokenize, train_steps
from naviyam.llm.wrapper import LLM, LLMBusyError, LLMConfigError, load_base, pick_device, quantization_config
from naviyam.registry import ModelRegistry, NoVersionError, registry_of


@pytest.fixture
def two_adapters(tmp_path, make_adapter) -> tuple[ModelRegistry, str]:
    """A file registry whose ``adapters`` model holds v0001 (production) and v0002, both for the micro base."""
    registry, model = registry_of(tmp_path / "adapters")
    make_adapter(registry.model_root(model), "v1", seed=1)
    make_adapter(registry.model_root(model), "v2", seed=2)
    registry.promote(model, "v0001")
    return registry, model


def _logits(model, tokenizer, text="급식카드 되는 치킨집 추천해줘"):
    ids = torch.tensor([tokenize(tokenizer, text)])
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_device_pick_is_cpu_here_and_quantization_needs_cuda(tmp_path):
    assert pick_device() == "cpu"
    assert quantization_config(False, False, "cpu") is None
    with pytest.raises(LLMConfigError, match="needs a CUDA GPU"):
        quantization_config(True, False, "cpu")
    with pytest.raises(LLMConfigError, match="no model weights"):
        load_base(tmp_path)


def test_loads_with_auto_classes_and_generates(micro_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert type(AutoModelForCausalLM.from_pretrained(micro_base)).__name__ == "GPTNeoXForCausalLM"
    llm = LLM(micro_base)
    assert llm.device == "cpu" and llm.version == "micro-neox"
    assert llm.task_defaults("nlu")["temperature"] == 0.1 and llm.task_defaults("nlu")["max_length"] == 512
    nlg = llm.task_defaults("nlg")
    assert (nlg["temperature"], nlg["top_p"], nlg["do_sample"]) == (0.7, 0.9, True)
    text = llm.generate(nlu_prompt("떡볶이 먹고 싶어"), max_new_tokens=8, task="nlu")
    assert isinstance(text, str)
    gen = llm.complete(nlu_prompt("떡볶이 먹고 싶어"), max_new_tokens=8, do_sample=False)
    assert 1 <= len(gen.token_ids) + gen.finished <= 9 and len(gen.logprobs) >= len(gen.token_ids)
    assert 0.0 < gen.mean_prob <= 1.0
    tok = AutoTokenizer.from_pretrained(micro_base)
    # A special token typed by the child is text, not an end-of-sequence.
    assert tok.eos_token_id not in tokenize(tok, nlu_prompt("<|endoftext|> 안녕"))


def test_generation_is_thread_safe_and_busy_is_reported(micro_base):
    llm = LLM(micro_base)
    prompt = nlu_prompt("안녕 나비얌")
    results: list[str] = []
    errors: list[BaseException] = []

    def work():
        try:
            results.append(llm.generate(prompt, max_new_tokens=6, do_sample=False, max_time=30))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1   # greedy: same answer from every thread
    with llm._lock:                                  # another request holds the model
        with pytest.raises(LLMBusyError):
            llm.complete(prompt, max_new_tokens=4, max_time=0.05)


def test_target_modules_follow_the_architecture(micro_base):
    from transformers import LlamaConfig, LlamaForCausalLM

    _, neox, _ = load_base(micro_base, "cpu")
    assert target_modules_for(neox) == ["query_key_value", "dense"]
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    assert target_modules_for(llama) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    config = lora_config(LLMSettings(), neox)
    assert (config.r, config.lora_alpha, config.lora_dropout, config.bias) == (16, 32, 0.1, "none")
    assert set(config.target_modules) == {"query_key_value", "dense"}
    with pytest.raises(LoRAError):
        target_modules_for(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_lora_training_step_then_generation_and_round_trip(micro_base, micro_examples, tmp_path):
    from peft import PeftModel, get_peft_model

    tokenizer, base, _ = load_base(micro_base, "cpu")
    model = get_peft_model(base, lora_config(LLMSettings(), base))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    data = [encode(tokenizer, ex, 256) for ex in micro_examples]
    pad = tokenizer.pad_token_id
    before = perplexity(model, data, pad)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    losses = train_steps(model, [data[:3], data[3:]] * 6, pad, learning_rate=2e-2)
    assert len(losses) == 12 and losses[-1] < losses[0]
    assert perplexity(model, data, pad) < before
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if "lora_" not in n)
    # Generation through the PeftModel.
    out = model.generate(input_ids=torch.tensor([tokenize(tokenizer, micro_examples[0].prompt)]), max_new_tokens=5,
                         do_sample=False, pad_token_id=pad)
    assert out.shape[1] > len(tokenize(tokenizer, micro_examples[0].prompt))
    # Save, load on a fresh base: identical logits.
    model.save_pretrained(tmp_path / "adapter")
    expected = _logits(model, tokenizer)
    _, fresh, _ = load_base(micro_base, "cpu")
    loaded = PeftModel.from_pretrained(fresh, tmp_path / "adapter").eval()
    assert torch.equal(_logits(loaded, tokenizer), expected)
    _, plain, _ = load_base(micro_base, "cpu")
    assert not torch.allclose(_logits(plain, tokenizer), expected)   # the adapter does something


def test_adapters_are_registry_versions(tmp_path, make_adapter):
    registry, model = registry_of(tmp_path / "adapters")
    assert registry.current_version(model) is None and registry.versions(model) == []
    make_adapter(registry.model_root(model), "v1", seed=1)
    make_adapter(registry.model_root(model), "v2", seed=2)
    registry.promote(model, "v0001")
    assert registry.current_version(model) == "v0001" and registry.versions(model) == ["v0001", "v0002"]
    assert registry.metadata(model, "v0002")["adapter_version"] == "v2"
    registry.promote(model, "v0002")
    assert registry.current_version(model) == "v0002"
    with pytest.raises(NoVersionError):
        registry.promote(model, "v0003")


def test_adapter_hot_swap_without_reloading_the_base(micro_base, two_adapters):
    from peft import PeftModel

    registry, model = two_adapters
    llm = LLM(micro_base, registry=registry, adapter_model=model)
    base = llm.base_model
    assert llm.version == "micro-neox+v0001"
    logits_v1 = _logits(llm.model, llm.tokenizer)
    assert llm.reload() is False                     # pointer unchanged: nothing to do

    registry.promote(model, "v0002")
    assert llm.reload() is True
    assert llm.version == "micro-neox+v0002" and llm.adapter_version == "v0002"
    assert llm.base_model is base and llm.base_loads == 1
    assert list(llm.model.peft_config) == ["v0002"]  # the old adapter is gone from memory
    _, fresh, _ = load_base(micro_base, "cpu")
    expected = _logits(PeftModel.from_pretrained(fresh, registry.version_dir(model, "v0002")).eval(), llm.tokenizer)
    swapped = _logits(llm.model, llm.tokenizer)
    assert torch.allclose(swapped, expected, atol=1e-6) and not torch.allclose(swapped, logits_v1)
    llm.generate(nlu_prompt("안녕"), max_new_tokens=3)


def test_adapter_of_another_base_is_not_loaded(micro_base, make_adapter, tmp_path):
    root = tmp_path / "adapters"
    path = make_adapter(root, "v9", seed=9)
    (path / "meta.json").write_text('{"version": "v9", "base_model": "some-other-base"}', encoding="utf-8")
    registry, model = registry_of(root)
    registry.promote(model, path.name)
    llm = LLM(micro_base, registry_dir=root)
    assert llm.version == "micro-neox" and llm.adapter_version is None
    assert llm.reload() is False


def test_served_bundle_picks_up_a_promoted_adapter(micro_base, two_adapters, tmp_path):
    """What the nlu/nlg model servers do per request: a new `current` adapter goes live, no restart."""
    from naviyam.config import Settings
    from naviyam.models import ModelBundle

    registry, model = two_adapters
    root = registry.model_root(model)
    settings = Settings(home=tmp_path, llm={"base_path": str(micro_base), "adapter_dir": str(root)})
    bundle = ModelBundle(settings)
    assert bundle.refresh_adapter(every_s=0) is False  # no LLM loaded in this process yet
    base = bundle.llm.base_model
    assert bundle.llm.adapter_version == "v0001"
    registry.promote(model, "v0002")
    assert bundle.refresh_adapter(every_s=0) is True
    assert bundle.llm.adapter_version == "v0002" and bundle.llm.base_model is base
    assert bundle.refresh_adapter(every_s=0) is False
