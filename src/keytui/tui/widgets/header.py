"""The main screen's top line: who acts and in what role, the key counts, the keys switch and
the database."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ...core.values import Counts, SettingsInfo, UsageFlags
from ..format import text


class HeaderLine(Static):
    def paint(
        self,
        *,
        actor: str,
        role: str | None,
        read_only: bool,
        counts: Counts | None,
        settings: SettingsInfo | None,
        database: str,
        flags: UsageFlags | None = None,
    ) -> None:
        line = Text()
        line.append(" keytui ", style="bold reverse")
        line.append("  ")
        line.append_text(text(f"{actor} ({role or 'not a user'})", "bold"))
        if read_only:
            line.append("  read-only", style="bold magenta")
        if counts:
            line.append("   ")
            line.append(f"{counts.active:,} active", style="green")
            line.append(" · ")
            line.append(f"{counts.expired:,} expired", style="yellow")
            line.append(" · ")
            line.append(f"{counts.revoked:,} revoked", style="red")
        if flags and flags.heavy:  # is:heavy lists them
            keys = "key" if flags.heavy == 1 else "keys"
            line.append("   ")
            line.append(f"{flags.heavy:,} {keys} in heavy use", style="bold white on red")
        if flags and flags.refused:  # is:refused lists them
            keys = "key" if flags.refused == 1 else "keys"
            line.append("   ")
            line.append(f"{flags.refused:,} {keys} with wrong secrets", style="bold magenta")
        if settings and not settings.keys_enabled:
            line.append("   KEYS DISABLED", style="bold white on red")
        line.append("   ")
        line.append_text(text(database, "dim"))
        self.update(line, layout=False)  # one line, fixed height
