"""Validating a chat request is cheap: ``naviyam.schemas`` shares its text normalisation with
step 3 through ``naviyam.text``, so it never loads the Kiwi analyser (kiwipiepy) to do it."""
from __future__ import annotations

import json
import subprocess
import sys

from naviyam.preprocess import normalize_unicode as step3_normalize
from naviyam.text import normalize_unicode


def test_validating_a_user_input_does_not_import_kiwipiepy():
    code = """
import json, sys
from naviyam.schemas import UserInput
user_input = UserInput(user_id="user_1", text="ｈｉ　ㅋㅋ 떡볶이 먹고 싶어")
print(json.dumps({"text": user_input.text, "kiwi": "kiwipiepy" in sys.modules}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"text": "hi ㅋㅋ 떡볶이 먹고 싶어", "kiwi": False}


def test_step3_normalises_with_the_same_function():
    assert step3_normalize is normalize_unicode
