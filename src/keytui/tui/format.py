"""Turning service values into things a table can show. Stored text is data, never markup."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from ..core.validate import visible
from ..core.values import KeyActivity, KeyInfo

STATUS_STYLE = {"active": "bold green", "expired": "bold yellow", "revoked": "bold red"}


def text(value: object, style: str = "") -> Text:
    """A stored string as plain text: ``[b]x`` stays ``[b]x``, ESC becomes ``\\x1b``."""
    return Text(visible(value), style=style, no_wrap=True, overflow="ellipsis")


def day(value: datetime | None, empty: str = "never") -> str:
    return value.strftime("%Y-%m-%d") if value else empty


def stamp(value: datetime | None, empty: str = "never") -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else empty


def ago(value: datetime | None, now: datetime) -> str:
    """How long ago, compactly: ``just now``, ``5m ago``, ``3h ago``, ``12d ago``, or a date."""
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 86400 * 60:
        return f"{int(seconds // 86400)}d ago"
    return day(value)


def compact(count: int) -> str:
    """A count in at most 5 characters: ``9,999``, ``12.3k``, ``123k``, ``1.2M``, ``12M``."""
    if count < 10_000:
        return f"{count:,}"
    for limit, unit in ((1_000_000, "k"), (1_000_000_000, "M"), (10**15, "G")):
        scaled = count / (limit // 1000)
        if count < limit:
            return f"{scaled:.1f}{unit}" if scaled < 100 else f"{int(scaled)}{unit}"
    return "many"


def status_badge(key: KeyInfo, now: datetime, activity: KeyActivity | None = None) -> Text:
    """The status word; for an active key, what needs a look first: heavy use (``is:heavy``),
    a burst of wrong secrets (``is:refused``), an expiry within 7 days."""
    if activity is not None and key.status == "active":
        if activity.heavy:
            return Text("heavy", style="bold white on red")
        if activity.refused:
            return Text("refused", style="bold white on magenta")
    if key.expires_within(now):
        return Text("expiring", style="bold black on yellow")
    return Text(key.status, style=STATUS_STYLE[key.status])


def expires_cell(key: KeyInfo, now: datetime) -> Text:
    if key.expires_within(now):
        return Text(day(key.expires_at), style="bold yellow")
    return Text(day(key.expires_at), style="" if key.status == "active" else "dim")
