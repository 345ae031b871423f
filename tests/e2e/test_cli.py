"""The `naviyam` console script as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NAVIYAM = str(Path(sys.executable).parent / "naviyam")


def run(*args, stdin=None, settings=None):
    env = dict(os.environ)
    if settings is not None:
        env["NAVIYAM_HOME"] = str(settings.home.resolve())
    return subprocess.run([NAVIYAM, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300)


def test_chat_json(settings):
    out = run("chat", "급식카드 되는 치킨집 추천해줘", "--user-id", "user_123", "--json", settings=settings)
    assert out.returncode == 0, out.stderr
    resp = json.loads(out.stdout)
    assert resp["metadata"]["intent"] == "FOOD_RECOMMENDATION"
    assert resp["recommendations"] and all(r["category"] == "치킨" for r in resp["recommendations"])


def test_bad_input_is_one_clear_line(settings):
    empty = run("chat", "   ", settings=settings)
    assert empty.returncode == 2 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    huge = run("chat", "치킨" * 600, settings=settings)
    assert huge.returncode == 2 and "too long" in huge.stderr and "Traceback" not in huge.stderr
    bad_id = run("chat", "치킨", "--user-id", "../etc/passwd", settings=settings)
    assert bad_id.returncode == 2 and "user_id" in bad_id.stderr


def test_nlu_batch_from_stdin(settings):
    out = run("nlu", "--json", stdin="안녕\n짜장면 먹을래\n\n만원으로 뭐 먹지\n", settings=settings)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r.get("intent") for r in rows] == ["GREETING", "FOOD_RECOMMENDATION", None, "BUDGET_INQUIRY"]
    assert rows[1]["entities"]["food_category"] == "중식"
    assert rows[2]["error"]
    assert rows[3]["entities"]["budget"] == 10000


def test_missing_data_is_explained(tmp_path):
    env = dict(os.environ, NAVIYAM_HOME=str(tmp_path))
    out = subprocess.run([NAVIYAM, "chat", "치킨"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "naviyam data build" in out.stderr
