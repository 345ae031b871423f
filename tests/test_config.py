from pathlib import Path

from naviyam.config import Settings


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
