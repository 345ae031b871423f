"""The LoRA adapters are versions of naviyam.registry's ``lora`` model (no second registry)."""
from __future__ import annotations

import pytest

from naviyam.config import Settings
from naviyam.registry import LORA, ModelRegistry, adapter_registry, registry_of


def test_the_home_registry_holds_the_adapters(tmp_path):
    registry, model = adapter_registry(Settings(home=tmp_path))
    assert model == LORA and registry.root == ModelRegistry.from_settings(Settings(home=tmp_path)).root


def test_a_configured_adapter_dir_is_a_file_registry_of_its_own(tmp_path):
    settings = Settings(home=tmp_path / "home", llm={"adapter_dir": str(tmp_path / "store" / "adapters")})
    registry, model = adapter_registry(settings)
    assert (registry.root, model, registry.backend) == (tmp_path / "store", "adapters", "files")
    src = tmp_path / "adapter"
    src.mkdir()
    (src / "adapter_config.json").write_text("{}")
    version = registry.register(model, src, {"val_perplexity": 3.0}, adapter_version="lora-x")
    registry.promote(model, version)
    assert registry.resolve(model) == tmp_path / "store" / "adapters" / "v0001"


def test_llm_settings_given_apart_name_the_adapter_dir(tmp_path):
    from naviyam.llm.settings import LLMSettings

    registry, model = adapter_registry(Settings(home=tmp_path), LLMSettings(adapter_dir=str(tmp_path / "a")))
    assert (registry.root, model) == (tmp_path, "a")


def test_a_model_directory_needs_a_model_name(tmp_path):
    with pytest.raises(ValueError, match="model directory"):
        registry_of(tmp_path / "Not.A.Model")
