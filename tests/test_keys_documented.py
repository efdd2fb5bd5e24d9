"""The README's keys table, the help screen and the main screen's bindings name the same keys
(issue 11: "the README's keys table and help agree with the app"). A key bound but missing from
the README, or documented but bound to nothing, fails here."""

from __future__ import annotations

import re
from itertools import takewhile
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.widgets import DataTable, Static

from keytui.tui.app import make_app
from keytui.tui.screens.help import EXTRA, HelpScreen, key_label
from keytui.tui.screens.main_keys import MAIN_BINDINGS
from keytui.tui.widgets.key_table import KeyTable

from .test_tui import modal, plain, started, tui

README = Path(__file__).resolve().parents[1] / "README.md"
# How the README and the help spell a key -> Textual's name for it
SPELLED = {
    "?": "question_mark",
    "/": "slash",
    "esc": "escape",
    "↓": "down",
    "↑": "up",
    "pgdn": "pagedown",
    "pgup": "pageup",
}


def readme_keys() -> dict[str, str]:
    """Textual key name -> the README's spelling, from the first column of its keys table."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| key | does |") :].splitlines()[2:]  # past the header rows
    keys: dict[str, str] = {}
    for row in takewhile(lambda line: line.startswith("|"), table):
        for spelled in re.findall(r"`([^`]+)`", row.split("|")[1]):
            keys[SPELLED.get(spelled, spelled)] = spelled
    return keys


def bound(bindings) -> set[str]:
    return {key for b in bindings if isinstance(b, Binding) for key in b.key.split(",")}


def help_extra_keys() -> set[str]:
    """The keys of the help's lines that no binding makes (``j / k, ↓ / ↑``); not clicks."""
    keys = set()
    for spelled, _ in EXTRA:
        if not spelled.startswith("click"):
            keys.update(SPELLED.get(k, k) for k in re.split(r" / |, ", spelled))
    return keys


def test_the_readme_names_every_main_screen_key_and_only_keys_that_are_bound():
    documented = set(readme_keys())
    main = bound(MAIN_BINDINGS)
    assert main <= documented, f"bound but not in the README: {sorted(main - documented)}"
    on_main_screen = (
        main | bound(KeyTable.BINDINGS) | bound(DataTable.BINDINGS) | {App.COMMAND_PALETTE_BINDING}
    )
    assert documented <= on_main_screen, (
        f"in the README but bound to nothing: {sorted(documented - on_main_screen)}"
    )
    # the help names the same keys: the bindings, and its extra lines
    in_help = (main - {"j", "k"}) | help_extra_keys()  # (j and k: in an extra line)
    assert in_help == documented, (sorted(in_help - documented), sorted(documented - in_help))


@tui
async def test_the_help_screen_shows_each_key_of_the_readme(make_sqlite_service):
    service = make_sqlite_service("alice", face="tui")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await started(app, pilot)
        await pilot.press("question_mark")
        help_screen = await modal(app, pilot, HelpScreen)
        keys_table = help_screen.query_one("#help-body").query(Static).first()
        # its first column: "   j / k, ↓ / ↑  Move down / up ..." -> "j / k, ↓ / ↑"
        shown = {re.split(r"\s{2,}", line.strip())[0] for line in plain(keys_table).splitlines()}
        for name, spelled in readme_keys().items():
            label = key_label(name)  # as the help spells a bound key
            assert any(label in keys or spelled in keys for keys in shown), (name, sorted(shown))
