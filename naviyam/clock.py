"""Server time, and what a client's clock is allowed to say.

Event times (the interaction log, feedback, the learning loop's windows) are the server's
receipt time: a device with a wrong clock, or any client, must not move a training window. The
child's own clock is kept only as the *local time* a turn is about ("open now", the time of
day), and only while it is within ``max_client_skew_hours`` of the server's; beyond that the
server's time is used and the turn says so (``client_clock="skewed"``).

Times the catalogue and the generated history use are naive Korean wall-clock time (KST): shops
open at "11:00" local time. A naive client timestamp is read as that wall clock; an aware one is
converted to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Seoul")
ClientClock = Literal["ok", "missing", "skewed"]


class Clock:
    """The server's clock: the real one, or pinned to one instant (tests, demos, replays).

    A pinned clock is a Settings value (``clock.pinned_at``) so that a whole local stack of
    processes agrees on it; it never advances.
    """

    def __init__(self, pinned_at: datetime | None = None):
        if pinned_at is not None and pinned_at.tzinfo is None:
            pinned_at = pinned_at.replace(tzinfo=LOCAL_TZ)
        self.pinned_at = pinned_at.astimezone(timezone.utc) if pinned_at is not None else None

    @classmethod
    def from_settings(cls, settings) -> "Clock":
        return cls(settings.clock.pinned_at)

    def now(self) -> datetime:
        """Aware UTC."""
        return self.pinned_at if self.pinned_at is not None else datetime.now(timezone.utc)

    def local_now(self) -> datetime:
        """Naive KST wall-clock time, the convention of the catalogue and the event log."""
        return to_local(self.now())


def to_local(moment: datetime) -> datetime:
    """Naive KST wall-clock time of ``moment`` (a naive value is already that)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(LOCAL_TZ).replace(tzinfo=None)


@dataclass(frozen=True)
class Receipt:
    received_at: datetime      # aware UTC: the event time
    local_time: datetime       # naive KST: the time the turn is about
    client_clock: ClientClock


def receive(client_time: datetime | None, received_at: datetime, max_skew: timedelta) -> Receipt:
    """The turn's times: the server's receipt and the child's local time within ``max_skew``."""
    server_local = to_local(received_at)
    if client_time is None:
        return Receipt(received_at, server_local, "missing")
    local = to_local(client_time)
    if abs(local - server_local) > max_skew:
        return Receipt(received_at, server_local, "skewed")
    return Receipt(received_at, local, "ok")
