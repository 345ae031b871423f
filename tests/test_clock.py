"""Server time and the device's clock (naviyam.clock): receipt time is the event time; the device's
clock is only the local time, and only within the allowed skew."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from naviyam.clock import LOCAL_TZ, Clock, receive, to_local
from naviyam.schemas import traffic_kind

SERVER = datetime(2026, 12, 2, 10, 40, tzinfo=timezone.utc)   # 19:40 in Seoul
SKEW = timedelta(hours=12)


def test_a_pinned_clock_never_moves_and_a_naive_pin_is_korean_time():
    clock = Clock(datetime(2026, 12, 2, 19, 40))
    assert clock.now() == SERVER and clock.now() == clock.now()
    assert clock.local_now() == datetime(2026, 12, 2, 19, 40)
    assert Clock(SERVER.astimezone(LOCAL_TZ)).now() == SERVER


def test_the_real_clock_is_now():
    before = datetime.now(timezone.utc)
    now = Clock().now()
    assert before <= now <= datetime.now(timezone.utc) and now.tzinfo is not None


@pytest.mark.parametrize("client, local, verdict", [
    (datetime(2026, 12, 2, 15, 40), datetime(2026, 12, 2, 15, 40), "ok"),            # naive = the child's wall clock
    (datetime(2026, 12, 3, 7, 20), datetime(2026, 12, 3, 7, 20), "ok"),              # 11 h 40 ahead: still believed
    (datetime(2026, 12, 2, 6, 30, tzinfo=timezone.utc), datetime(2026, 12, 2, 15, 30), "ok"),  # aware: converted
    (datetime(1991, 2, 2, 12, 0), datetime(2026, 12, 2, 19, 40), "skewed"),          # a device set to 1991
    (datetime(2026, 12, 3, 8, 0), datetime(2026, 12, 2, 19, 40), "skewed"),          # 12 h 20 ahead
    (datetime(2026, 12, 2, 7, 30), datetime(2026, 12, 2, 19, 40), "skewed"),         # 12 h 10 behind
    (None, datetime(2026, 12, 2, 19, 40), "missing"),
])
def test_the_device_clock_is_believed_only_near_the_server_clock(client, local, verdict):
    receipt = receive(client, SERVER, SKEW)
    assert receipt.received_at == SERVER          # always the event time
    assert (receipt.local_time, receipt.client_clock) == (local, verdict)


def test_to_local_keeps_naive_times():
    assert to_local(datetime(2026, 1, 1, 9)) == datetime(2026, 1, 1, 9)
    assert to_local(datetime(2026, 1, 1, 0, tzinfo=timezone.utc)) == datetime(2026, 1, 1, 9)


def test_traffic_labels():
    assert traffic_kind(None) == traffic_kind("") == "live"
    assert traffic_kind(" Bench ") == "bench"
    with pytest.raises(ValueError, match="X-Naviyam-Traffic"):
        traffic_kind("benchmark")
