"""naviyam.jsonl round trip (Korean kept as is, blank lines skipped)."""
from __future__ import annotations

from naviyam.jsonl import read_jsonl, write_jsonl


def test_round_trip_keeps_korean_and_skips_blank_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"text": "급식카드 되는 치킨집 추천해줘", "intent": "FOOD_RECOMMENDATION"}, {"n": 1}]
    assert write_jsonl(path, iter(rows)) == 2
    assert "급식카드" in path.read_text(encoding="utf-8")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n  \n")
    assert read_jsonl(path) == rows


def test_build_still_exports_read_jsonl():
    from naviyam import build

    assert build.read_jsonl is read_jsonl
