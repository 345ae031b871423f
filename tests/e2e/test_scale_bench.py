"""`python -m naviyam.scale_bench` at a tiny size: it builds every scale with the real generator
and measures real turns through the chatbot."""
from __future__ import annotations

from naviyam.config import Settings
from naviyam.scale_bench import REQUESTS, ROUNDS, ratio_line, run, table


def test_scale_bench_builds_and_measures_each_size(settings, tmp_path):
    tiny = Settings(home=tmp_path / "unused", n_schools=4, n_shops=120, n_users=200)
    results = run((1, 2), settings.models_dir, keep=tmp_path / "homes", base=tiny)
    assert [r.scale for r in results] == [1, 2]
    assert [r.shops for r in results] == [120, 240]
    assert [r.users for r in results] == [200, 400]
    for r in results:
        assert r.turns == len(REQUESTS) * ROUNDS
        assert 0 < r.cpu_ms_p50 <= r.cpu_ms_p95
        assert r.rss_mb > 100          # the chatbot's own models are loaded in the measuring process
        assert r.events > 0 and r.index_kind == "flat"
        assert (tmp_path / "homes" / f"x{r.scale}" / "models" / "retriever" / "meta.json").is_file()
    text = table(results)
    assert "   2x      240" in text
    assert "2x / 1x" in ratio_line(results) and "goal <= 2.0" in ratio_line(results)
