import os
from pathlib import Path

import pytest
from pydantic_settings import SettingsError

from naviyam.config import RetrievalSettings, Settings


def test_defaults_meet_data_set_sizes():
    s = Settings()
    assert s.n_shops >= 2000 and s.n_schools >= 20 and s.n_users >= 5000
    assert s.data_dir == Path("var") / "data"


def test_yaml_then_env_then_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("home: /tmp/from-yaml\nretrieval:\n  top_k: 7\n  bm25_weight: 0.3\n")
    monkeypatch.setenv("NAVIYAM_RETRIEVAL__TOP_K", "9")
    monkeypatch.delenv("NAVIYAM_HOME", raising=False)  # the suite's private home (tests/conftest.py)
    s = Settings.load(cfg)
    assert s.home == Path("/tmp/from-yaml")
    assert s.retrieval.top_k == 9          # env beats YAML
    assert s.retrieval.bm25_weight == 0.3  # YAML beats default
    assert Settings.load(cfg, home=tmp_path).home == tmp_path


def test_config_path_from_env(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("n_users: 10\n")
    monkeypatch.setenv("NAVIYAM_CONFIG", str(cfg))
    assert Settings.load().n_users == 10


@pytest.fixture
def clean_env(monkeypatch):
    """No NAVIYAM_* variables (the suite sets NAVIYAM_HOME and NAVIYAM_CLOCK__PINNED_AT)."""
    for name in [n for n in os.environ if n.upper().startswith("NAVIYAM_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def config_file(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "home: /tmp/from-yaml\n"
        "retrieval:\n  top_k: 7\n  bm25_weight: 0.3\n"
        "serving:\n  admin_token: from-yaml\n  replicas: {naviyam-nlu: 2}\n"
        "llm:\n  tiny:\n    steps: 3\n"
    )
    return cfg


def test_each_layer_beats_the_one_below(clean_env, config_file):
    clean_env.setenv("NAVIYAM_SERVING__ADMIN_TOKEN", "from-env")
    clean_env.setenv("NAVIYAM_SERVING__ROUTER_PORT", "8181")
    s = Settings.load(config_file, serving={"router_port": 8282})
    assert s.serving.host == "127.0.0.1"             # default, nothing above it
    assert s.serving.replicas == {"naviyam-nlu": 2}  # YAML over default
    assert s.serving.admin_token == "from-env"       # env over YAML
    assert s.serving.router_port == 8282             # override over env, merged into the section


def test_one_nested_env_field_keeps_the_rest_of_the_section(clean_env, config_file):
    clean_env.setenv("NAVIYAM_RETRIEVAL__TOP_K", "30")
    clean_env.setenv("NAVIYAM_LLM__TINY__HIDDEN_SIZE", "64")
    s = Settings.load(config_file)
    assert s.retrieval.top_k == 30
    assert s.retrieval.bm25_weight == 0.3                          # the file's other value
    assert s.retrieval.dense_weight == RetrievalSettings().dense_weight  # and the defaults
    assert (s.llm.tiny.hidden_size, s.llm.tiny.steps) == (64, 3)   # two levels down


def test_env_names_are_case_insensitive(clean_env):
    clean_env.setenv("NAVIYAM_Retrieval__Top_K", "11")
    assert Settings.load().retrieval.top_k == 11


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("NAVIYAM_SERVING__SERVICE_URLS", '{"naviyam-nlu": "http://nlu.svc/v1/models/naviyam-nlu:predict"}',
         lambda s: s.serving.service_urls == {"naviyam-nlu": "http://nlu.svc/v1/models/naviyam-nlu:predict"}),
        ("NAVIYAM_SERVING__REPLICAS", '{"naviyam-nlu": 2, "naviyam-ranker": 3}',
         lambda s: s.serving.replicas == {"naviyam-nlu": 2, "naviyam-ranker": 3}),
        ("NAVIYAM_SERVING__REPLICAS", "{naviyam-nlu: 2}", lambda s: s.serving.replicas == {"naviyam-nlu": 2}),
        ("NAVIYAM_LEARNING__TRAFFIC", "[live]", lambda s: s.learning.traffic == ["live"]),
        ("NAVIYAM_LEARNING__TRAFFIC", '["simulated"]', lambda s: s.learning.traffic == ["simulated"]),
        ("NAVIYAM_LLM__LORA_TARGET_MODULES", '["q_proj", "v_proj"]',
         lambda s: s.llm.lora_target_modules == ["q_proj", "v_proj"]),
        ("NAVIYAM_SERVING__PORTS__NAVIYAM-NLG", "9206", lambda s: s.serving.ports == {"naviyam-nlg": 9206}),
        ("NAVIYAM_RETRIEVAL", '{"top_k": 3}', lambda s: (s.retrieval.top_k, s.retrieval.bm25_weight) == (3, 0.4)),
    ],
)
def test_lists_and_mappings_are_json_or_yaml_flow(clean_env, name, value, read):
    clean_env.setenv(name, value)
    assert read(Settings.load())


def test_whole_section_and_sub_field_env_vars_merge(clean_env):
    clean_env.setenv("NAVIYAM_RETRIEVAL", '{"top_k": 3}')
    clean_env.setenv("NAVIYAM_RETRIEVAL__DENSE_WEIGHT", "0.1")
    retrieval = Settings.load().retrieval
    assert (retrieval.top_k, retrieval.dense_weight) == (3, 0.1)


@pytest.mark.parametrize(
    ("name", "value", "read", "expected"),
    [
        ("NAVIYAM_N_USERS", "30", lambda s: s.n_users, 30),
        ("NAVIYAM_LLM__NLG_ENABLED", "true", lambda s: s.llm.nlg_enabled, True),
        ("NAVIYAM_LLM__NLG_ENABLED", "yes", lambda s: s.llm.nlg_enabled, True),
        ("NAVIYAM_RANKING__LEARNING_RATE", "1e-3", lambda s: s.ranking.learning_rate, 1e-3),
        ("NAVIYAM_LLM__LORA_CPU_THREADS", "null", lambda s: s.llm.lora_cpu_threads, None),
        ("NAVIYAM_SERVING__ADMIN_TOKEN", "", lambda s: s.serving.admin_token, None),  # empty Secret: unset
        ("NAVIYAM_SERVING__FEEDBACK_TOKEN", "0123", lambda s: s.serving.feedback_token, "0123"),
        ("NAVIYAM_HOME", "/data/naviyam", lambda s: s.home, Path("/data/naviyam")),
        ("NAVIYAM_STATE__DSN", "postgresql+psycopg://u:p@db:5432/naviyam", lambda s: s.state.dsn,
         "postgresql+psycopg://u:p@db:5432/naviyam"),
        ("NAVIYAM_CLOCK__PINNED_AT", "2026-12-02T19:40:00+09:00", lambda s: s.clock.pinned_at.isoformat(),
         "2026-12-02T19:40:00+09:00"),
    ],
)
def test_plain_values_are_parsed_by_the_field_type(clean_env, name, value, read, expected):
    clean_env.setenv(name, value)
    assert read(Settings.load()) == expected


def test_naviyam_variables_that_are_no_field_are_ignored(clean_env):
    for name, value in {
        "NAVIYAM_FEAST_PROFILE": "cluster", "NAVIYAM_FEATURE_REPO": "/app/feature_repo",
        "NAVIYAM_LORA_GPUS": "0", "NAVIYAM_LLM_WEIGHTS_PVC": "naviyam-llm-weights",
        "NAVIYAM_COMPONENT_IMAGE": "registry.example.com/naviyam/naviyam-jobs:0.1.0",
        "NAVIYAM_NO_SUCH_FIELD": "1", "NAVIYAM_RETRIEVAL__NO_SUCH_FIELD": "1",
    }.items():
        clean_env.setenv(name, value)
    assert Settings.load() == Settings()


def test_direct_construction_reads_neither_env_nor_file(clean_env, config_file):
    clean_env.setenv("NAVIYAM_CONFIG", str(config_file))
    clean_env.setenv("NAVIYAM_HOME", "/from/env")
    clean_env.setenv("NAVIYAM_RETRIEVAL__TOP_K", "30")
    s = Settings(n_users=10)
    assert (s.home, s.retrieval.top_k, s.n_users) == (Path("var"), RetrievalSettings().top_k, 10)


def test_unknown_keys_in_file_and_overrides_are_dropped(clean_env, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("no_such_field: 1\nretrieval:\n  no_such_field: 2\n")
    assert Settings.load(cfg, also_not_a_field=3) == Settings()


def test_a_named_config_file_must_exist(clean_env, tmp_path):
    clean_env.setenv("NAVIYAM_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError):
        Settings.load()


def test_a_malformed_list_names_its_field(clean_env):
    clean_env.setenv("NAVIYAM_LEARNING__TRAFFIC", "[live")
    with pytest.raises(SettingsError, match="learning"):
        Settings.load()
