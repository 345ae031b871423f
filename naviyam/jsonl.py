"""JSON Lines files (one JSON object per line, UTF-8): the NLU corpus, LoRA data, samples.

A leaf module on purpose: the build, the LLM package and the CLI all read these files, and none
of them should have to import another to do it.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    """Every non-blank line of ``path`` as a dict."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Writes ``rows`` one per line (non-ASCII kept as is); returns how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
