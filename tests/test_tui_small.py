"""Smaller things seen in issue 11: the palette, notifications, words, details at 80 columns,
the new-key form's dates, an event shown whole."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from textual.widgets import Input, Select, Static

from keytui.core.service import KeyService
from keytui.tui.app import make_app
from keytui.tui.screens.confirm import ReasonModal
from keytui.tui.screens.details import KeyDetailsScreen
from keytui.tui.screens.dialogs import revoke_question
from keytui.tui.screens.event import EventModal
from keytui.tui.screens.events import EventsScreen
from keytui.tui.screens.new_key import NewKeyModal

from .test_tui import modal, plain, started, tui, until

SMALL = (80, 24)


@pytest.fixture
def service(make_sqlite_service) -> KeyService:
    return make_sqlite_service("alice", face="tui")


def rendered(screen) -> list[str]:
    return [strip.text for strip in screen._compositor.render_strips()]


@tui
async def test_the_palette_lists_our_actions_once_with_their_keys(service):
    service.create_key("one")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SMALL) as pilot:
        screen = await started(app, pilot)
        commands = list(app.get_system_commands(screen))
        titles = [command.title for command in commands]
        for internal in ("Cursor left", "Copy selected text", "Cursor up", "Page down"):
            assert internal not in titles
        ours = [title for title in titles if title in ("Bottom", "Top", "Active keys")]
        assert sorted(ours) == ["Active keys", "Bottom", "Top"]
        active = next(command for command in commands if command.title == "Active keys")
        assert active.help.startswith("key: 2") and "(2)" not in active.help


@tui
async def test_a_question_clears_notifications_and_marks_lead_the_info_line(service):
    for n in range(3):
        service.create_key(f"key {n}")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SMALL) as pilot:
        screen = await started(app, pilot)
        await pilot.press("a")
        await until(pilot, lambda: len(screen.marks) == 3, "all marked")
        assert plain(screen.query_one("#info", Static)).startswith("3 marked")
        assert list(app._notifications)  # "Marked 3 matching keys."
        await pilot.press("x")
        await modal(app, pilot, ReasonModal)
        assert not list(app._notifications)


def test_words_count_right(service):
    active = service.create_key("active").key
    gone = service.create_key("gone").key
    service.revoke_keys([gone.id])
    question = revoke_question(service.plan_revoke([active.id, gone.id]))
    words = " ".join(line.plain for line in [*question.body, *(question.rows or ())])
    assert "1 marked key will be skipped" in words and "key(s)" not in words


@tui
async def test_details_at_80_columns_keep_values_beside_labels_and_say_never_once(service):
    issued = service.create_key("one", description="word " * 30)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SMALL) as pilot:
        await started(app, pilot)
        await pilot.press("enter")
        details = await modal(app, pilot, KeyDetailsScreen)
        await until(pilot, lambda: "Uses" in "".join(rendered(details)), "the details")
        lines = rendered(details)
        assert not any("never (never)" in line for line in lines)
        assert any(re.search(r"Last used +never", line) for line in lines)
        start = next(i for i, line in enumerate(lines) if line.startswith("Description"))
        # the wrapped description stays in the value column, under its first line
        assert lines[start + 1].startswith(" " * 14) and "word" in lines[start + 1]
        assert issued.key.id


@tui
async def test_one_event_is_one_event_and_enter_shows_it_whole(service):
    issued = service.create_key("one", description="a description long enough " * 4)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SMALL) as pilot:
        await started(app, pilot)
        await app.push_screen(EventsScreen(issued.key.id))
        events = await modal(app, pilot, EventsScreen)
        await until(
            pilot, lambda: plain(events.query_one("#events-info", Static)) == "1 event", "1 event"
        )
        await pilot.press("enter")
        whole = await modal(app, pilot, EventModal)
        text = "\n".join(rendered(whole))
        assert "key.create" in text and issued.key.id in text and '"name": "one"' in text
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is events, "back to the events")


@tui
async def test_the_date_box_shows_the_choices_date_and_asks_for_a_date_in_its_terms(service):
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SMALL) as pilot:
        await started(app, pilot)
        await pilot.press("n")
        form = await modal(app, pilot, NewKeyModal)
        await until(pilot, lambda: form.query_one("#date", Input).placeholder, "the date")
        ninety = service.clock() + timedelta(days=90)
        assert form.query_one("#date", Input).placeholder == f"{ninety:%Y-%m-%d}"
        form.query_one("#expires", Select).value = "30d"
        await pilot.pause()
        thirty = service.clock() + timedelta(days=30)
        assert form.query_one("#date", Input).placeholder == f"{thirty:%Y-%m-%d}"
        form.query_one("#name", Input).value = "dated"
        form.query_one("#expires", Select).value = "date"
        await pilot.pause()
        form.query_one("#date", Input).value = "90d"
        await pilot.press("ctrl+s")
        error = form.query_one("#expires-error", Static)
        await until(pilot, lambda: plain(error), "the date's error")
        assert "YYYY-MM-DD" in plain(error) and "number of days" not in plain(error)
        assert not service.list_keys().keys
