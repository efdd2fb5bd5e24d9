"""The filter language in the app's search box: terms filter the table, `a` marks what the
filter matched, a bad term is one line in the info line (the last good filter's keys stay), and
a pasted secret finds its key while the box shows only ``kt_<id>_…``."""

from __future__ import annotations

from textual import events
from textual.widgets import Input, Static

from keytui.core import filter as lang
from keytui.core import keyformat
from keytui.tui.app import make_app

from .test_tui import SIZE, open_as, plain, service, started, tui, until

__all__ = ["open_as", "service"]  # the fixtures, shared with test_tui


def ids(screen) -> set[str]:
    return {key.id for key in screen.table.keys}


@tui
async def test_filter_terms_narrow_the_table_and_a_marks_what_they_matched(service, open_as):
    open_as("bob")
    service.add_user("bob", "developer")
    bob = [service.create_key(f"bob {n}", owner="bob").key.id for n in range(3)]
    bobcat = service.create_key("bobcat exporter").key.id  # alice's
    service.revoke_keys([bob[2]])
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("slash", *"bob")
        await until(pilot, lambda: ids(screen) == {*bob, bobcat}, "free words as before")
        await pilot.press(*" owner:bob status:active", "enter")
        await until(pilot, lambda: ids(screen) == set(bob[:2]), "the filter")
        await pilot.press("a")
        await until(pilot, lambda: screen.marks == set(bob[:2]), "a to mark the matches")


@tui
async def test_an_unknown_term_is_one_line_in_the_info_line(service):
    mine = service.create_key("billing worker").key.id
    service.create_key("mailer")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        info = screen.query_one("#info", Static)
        await pilot.press("slash", *"billing")
        await until(pilot, lambda: ids(screen) == {mine}, "the search")
        screen.query_one("#search", Input).post_message(events.Paste(" colour:red"))
        await until(pilot, lambda: "not a filter term" in plain(info), "the message")
        assert "owner:" in plain(info) and "\n" not in plain(info)
        assert ids(screen) == {mine}  # the last good filter's keys stay
        await pilot.press("a")  # marks nothing while the box is no filter
        await pilot.pause()
        assert screen.marks == set()
        await pilot.press(*["backspace"] * len(" colour:red"))
        await until(pilot, lambda: "of 1 matching" in plain(info), "the line back")


@tui
async def test_a_pasted_secret_finds_its_key_and_the_box_shows_only_its_id(service):
    issued = service.create_key("leaked")
    service.create_key("other")
    secret, key_id = issued.secret, issued.key.id
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        box = screen.query_one("#search", Input)
        await pilot.press("slash")
        box.post_message(events.Paste(secret))
        await until(pilot, lambda: ids(screen) == {key_id}, "the key of the pasted secret")
        assert box.value == keyformat.elided(key_id)
        assert secret.rsplit("_", 1)[-1] not in box.value


@tui
async def test_help_lists_every_term_of_the_language(service):
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: bool(app.screen.query("#filter-help")), "the help")
        shown = plain(app.screen.query_one("#filter-help", Static))
        for field in lang.FIELDS:
            assert f"{field}:" in shown, field
        assert "-term" in shown and '"billing worker"' in shown
