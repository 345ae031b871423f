"""The ``meta.json`` every saved model artefact directory carries (written last by its save).

One reader for all of them, so "not built yet" and "built by another format" read alike
whichever part is loaded.
"""
from __future__ import annotations

import json
from pathlib import Path

META_FILE = "meta.json"


def read_meta(directory: str | Path, *, what: str, format_version: int,
              format_error: type[Exception] = ValueError, meta_file: str = META_FILE) -> dict:
    """The artefact's meta; FileNotFoundError when it was never (completely) saved there,
    ``format_error`` when it was saved in another format than ``format_version``."""
    path = Path(directory) / meta_file
    if not path.is_file():
        raise FileNotFoundError(f"no {what} in {directory} (missing {meta_file}); build it first")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != format_version:
        raise format_error(f"{what} format {meta.get('format')} != supported {format_version}; rebuild it")
    return meta
