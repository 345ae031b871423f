"""`make test` leaves the user's state alone: the configured home's state/ is byte-identical after
the whole suite (this test is moved to the end of the run by tests/conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

from naviyam.config import Settings


def test_configured_home_is_untouched(configured_home):
    home = configured_home["configured_home"]
    assert Settings.load().home.resolve() != home, "tests must run on a private home"
    assert Path(os.environ["NAVIYAM_HOME"]) == configured_home["private_home"]
    before, after = configured_home["fingerprint"], configured_home["fingerprint_of"](home / "state")
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the suite wrote into {home / 'state'}: {changed}"
