"""Feast imported through naviyam: without typeguard's import-time recompiling, typeguard untouched."""
from __future__ import annotations

from naviyam.features.feast_import import _pass_through, import_feast


def _instrumented(function) -> bool:
    # typeguard's instrumented copy calls into typeguard._functions from its body.
    return "check_argument_types_internal" in function.__code__.co_names


def test_the_pass_through_is_typechecked_under_python_dash_o():
    def f(x: int) -> int:
        return x

    assert _pass_through(f) is f
    assert _pass_through(forward_ref_policy="warn")(f) is f


def test_feast_through_naviyam_is_not_instrumented_and_typeguard_is_restored():
    """In this process Feast is imported, here or by an earlier test, only ever through
    naviyam.features (which calls import_feast first): so its classes are not instrumented."""
    import typeguard

    real = typeguard.typechecked
    feast = import_feast()
    from feast.feature_view import FeatureView
    from feast.on_demand_feature_view import OnDemandFeatureView

    assert not _instrumented(OnDemandFeatureView.__init__) and not _instrumented(FeatureView.__init__)
    assert typeguard.typechecked is real and import_feast() is feast


def test_plain_typeguard_still_instruments():
    """Only Feast's import is changed: typeguard's decorator works for anyone else."""
    from typeguard import typechecked

    @typechecked
    def f(x: int) -> int:
        return x

    assert _instrumented(f)
