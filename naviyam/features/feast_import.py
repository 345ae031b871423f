"""``import feast`` without typeguard's import-time instrumentation.

Feast decorates most of its API classes with typeguard's ``@typechecked``. Typeguard 4 instruments
each method by reading, parsing and recompiling its module's whole source, once per method, at
import: 242 recompiles, 3.9 of the 6.1 s ``import feast`` took on the 2-core CI machine, paid by
every process that reads features (each model server, test worker and pipeline task). The checks
guard Feast's public API against wrong argument types at run time; typeguard documents them as
a development aid that is a no-op under ``python -O``. That no-op is what Feast's classes get
here: ``typechecked`` is swapped for a pass-through only while ``import feast`` runs, then put
back (nothing else in the process changes). Our calls into Feast are typed at our own boundary
(``naviyam.features``) and covered by the feature tests; Feast's modules imported later (an
online store's, on first use) keep their checks.

Every import of Feast in ``naviyam`` goes through ``import_feast()`` first.
"""
from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any

_lock = threading.Lock()


def _pass_through(target: Any = None, **_options: Any) -> Any:
    """``@typechecked`` and ``@typechecked(...)`` as under ``python -O``: the target unchanged."""
    return target if target is not None else (lambda wrapped: wrapped)


def import_feast() -> ModuleType:
    """The ``feast`` module, imported (once per process) without typeguard instrumentation."""
    loaded = sys.modules.get("feast")
    if loaded is not None:
        return loaded
    import typeguard

    with _lock:
        if "feast" in sys.modules:
            return sys.modules["feast"]
        real = typeguard.typechecked
        typeguard.typechecked = _pass_through
        try:
            return importlib.import_module("feast")
        finally:
            typeguard.typechecked = real
