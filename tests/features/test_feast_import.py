"""Feast imported through naviyam: without typeguard's import-time recompiling, typeguard untouched."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from naviyam.features.feast_import import _pass_through


def _instrumented(function) -> bool:
    # typeguard's instrumented copy calls into typeguard._functions from its body.
    return "check_argument_types_internal" in function.__code__.co_names


def test_the_pass_through_is_typechecked_under_python_dash_o():
    def f(x: int) -> int:
        return x

    assert _pass_through(f) is f
    assert _pass_through(forward_ref_policy="warn")(f) is f


def test_feast_through_naviyam_is_not_instrumented_and_typeguard_is_restored():
    # A fresh interpreter: this test process may have imported Feast already, either way.
    code = textwrap.dedent("""
        import typeguard
        real = typeguard.typechecked
        from naviyam.features.feast_import import import_feast
        feast = import_feast()
        from feast.on_demand_feature_view import OnDemandFeatureView
        from feast.feature_view import FeatureView
        codes = [OnDemandFeatureView.__init__.__code__, FeatureView.__init__.__code__]
        print(any("check_argument_types_internal" in c.co_names for c in codes), typeguard.typechecked is real,
              import_feast() is feast)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_plain_typeguard_still_instruments():
    """Only Feast's import is changed: typeguard's decorator works for anyone else."""
    from typeguard import typechecked

    @typechecked
    def f(x: int) -> int:
        return x

    assert _instrumented(f)
