"""Time windows for the admin pages, aligned to the hourly roll-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
DEFAULT_WINDOW = "7d"


@dataclass(frozen=True)
class Window:
    key: str
    since: datetime
    until: datetime

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400


def window_named(key: str | None, *, now: datetime | None = None) -> Window:
    """The window ending with the current hour (included) and reaching back ``key``."""
    key = key if key in WINDOWS else DEFAULT_WINDOW
    now = now or timezone.now()
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return Window(key=key, since=until - WINDOWS[key], until=until)
