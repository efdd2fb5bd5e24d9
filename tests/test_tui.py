"""The TUI's behaviour, driven through Pilot on a seeded SQLite database in tmp_path.

Every test asserts on what the service then holds (and on ``app.clipboard``), not only on what
the screen shows. The app runs under ``App.run_test()``; these tests are plain functions that run
it with ``asyncio.run`` (no pytest async plugin is needed).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from rich.console import Console
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Select, Static

from keytui.core import keyformat
from keytui.core.demo import seed_demo
from keytui.core.errors import NotFound, PermissionDenied
from keytui.core.models import Event, Key
from keytui.core.service import KeyQuery, KeyService
from keytui.tui.app import KeytuiApp, make_app
from keytui.tui.screens.confirm import ConfirmModal, ReasonModal
from keytui.tui.screens.details import KeyDetailsScreen
from keytui.tui.screens.help import HelpScreen, key_label
from keytui.tui.screens.main import MainScreen
from keytui.tui.screens.new_key import NewKeyModal
from keytui.tui.screens.rename import RenameModal
from keytui.tui.screens.reveal import RevealModal
from keytui.tui.widgets.text_lines import TextLines

SIZE = (120, 36)


def tui(test: Callable) -> Callable:
    """Run an ``async def`` test in its own event loop; pytest still sees its fixtures."""

    @functools.wraps(test)
    def run(*args, **kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    run.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    return run


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def open_as(make_sqlite_service) -> Callable[[str], KeyService]:
    """``open_as("bob")``: a service for that login on the test's one SQLite database."""
    return lambda actor: make_sqlite_service(actor, face="tui")


@pytest.fixture
def service(open_as) -> KeyService:
    """alice, the database's admin."""
    return open_as("alice")


# -- helpers -----------------------------------------------------------------------------------


async def until(
    pilot: Pilot, condition: Callable[[], object], what: str = "", timeout: float = 60.0
) -> None:
    """Pause in small steps until ``condition()`` holds; fail after ``timeout`` seconds (a
    generous deadline: on a loaded machine a state may take long to come, but it comes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        await pilot.pause(0.05)


async def started(app: KeytuiApp, pilot: Pilot) -> MainScreen:
    """The main screen once its first window of keys and the header's counts are shown
    (the counts follow the first window)."""
    await until(
        pilot,
        lambda: (
            isinstance(app.screen, MainScreen)
            and app.screen.window.loaded
            and app.screen.window.counts is not None
        ),
        "the main screen to load",
    )
    await pilot.pause()
    return app.screen  # type: ignore[return-value]


async def modal(app: KeytuiApp, pilot: Pilot, kind: type) -> object:
    await until(pilot, lambda: isinstance(app.screen, kind), kind.__name__)
    await pilot.pause()
    return app.screen


def plain(widget: Static) -> str:
    content = widget.content
    if hasattr(content, "plain"):
        return content.plain
    if isinstance(content, str):
        return content
    console = Console(width=200, color_system=None)  # a grid or a group: its text, unwrapped
    with console.capture() as capture:
        console.print(content)
    return capture.get()


def screen_text(screen) -> str:
    """The text of a screen's Statics, and of its TextLines (a long list, drawn as it scrolls)."""
    lines = [line.plain for widget in screen.query(TextLines) for line in widget.items]
    return "\n".join([*(plain(static) for static in screen.query(Static)), *lines])


def names(screen: MainScreen) -> list[str]:
    return [key.name for key in screen.table.keys]


def cell(screen: MainScreen, key_id: str, column: str) -> str:
    value = screen.table.get_cell(key_id, column)
    return value.plain if isinstance(value, Text) else str(value)


async def go_to(pilot: Pilot, screen: MainScreen, key_id: str) -> None:
    row = [key.id for key in screen.table.keys].index(key_id)
    screen.table.move_cursor(row=row)
    await pilot.pause()
    assert screen.table.current.id == key_id


def notifications(app: KeytuiApp) -> list:
    return list(app._notifications)


def event_count(service: KeyService) -> int:
    with service.db.read() as session:
        return session.scalar(select(func.count()).select_from(Event))


def statuses(service: KeyService) -> dict[str, str]:
    return {key.id: key.status for key in service.list_keys(KeyQuery(limit=10_000)).keys}


# -- search and filters ------------------------------------------------------------------------


@tui
async def test_search_filters_after_the_debounce_enter_keeps_it_and_esc_clears(service):
    for name in ("billing worker", "billing cron", "search gateway", "mailer batch"):
        service.create_key(name)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        assert len(screen.table.keys) == 4
        await pilot.press("slash")
        assert app.focused is screen.query_one("#search", Input)
        await pilot.press(*"billing")
        await until(
            pilot,
            lambda: sorted(names(screen)) == ["billing cron", "billing worker"],
            "the search to filter",
        )
        assert screen.window.match_count == 2
        assert "of 2 matching" in plain(screen.query_one("#info", Static))

        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is screen.table
        await pilot.pause(0.3)
        assert screen.query_one("#search", Input).value == "billing"
        assert sorted(names(screen)) == ["billing cron", "billing worker"]

        await pilot.press("slash", "escape")  # clears and returns
        assert screen.query_one("#search", Input).value == ""
        await until(pilot, lambda: len(screen.table.keys) == 4, "the filter to clear")
        assert app.focused is screen.table


@tui
async def test_search_matches_id_and_owner(service, open_as):
    open_as("bob")
    service.add_user("bob", "developer")
    mine = service.create_key("one").key
    bobs = service.create_key("two", owner="bob").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("slash", *mine.id[:7])
        await until(pilot, lambda: [k.id for k in screen.table.keys] == [mine.id])
        await pilot.press("escape", "slash", *"bob")
        await until(pilot, lambda: [k.id for k in screen.table.keys] == [bobs.id])


@tui
async def test_status_keys_1_to_4_filter_the_table(service):
    seed_demo(service, 120)
    counts = service.counts()
    assert counts.active and counts.expired and counts.revoked
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        assert screen.window.match_count == counts.total
        for key, status, expected in (
            ("2", "active", counts.active),
            ("3", "expired", counts.expired),
            ("4", "revoked", counts.revoked),
            ("1", None, counts.total),
        ):
            await pilot.press(key)
            await until(
                pilot,
                lambda s=status, n=expected: (
                    screen.window.status == s
                    and screen.window.match_count == n
                    and screen.table.keys
                    and all(s is None or k.status == s for k in screen.table.keys)
                ),
                f"status {status}",
            )
            assert f"of {expected:,}" in plain(screen.query_one("#info", Static))


# -- marks and bulk revoke ---------------------------------------------------------------------


@tui
async def test_space_marks_a_marks_all_matching_u_unmarks(service):
    for name in ("billing a", "billing b", "billing c", "other"):
        service.create_key(name)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        first = screen.table.current
        await pilot.press("space")
        assert screen.marks == {first.id}
        assert cell(screen, first.id, "mark") == "[x]"
        assert screen.table.current.id != first.id  # the cursor moved on
        await pilot.press("up", "space")
        assert screen.marks == set()
        assert cell(screen, first.id, "mark") == "[ ]"

        await pilot.press("slash", *"billing", "enter")
        await until(pilot, lambda: len(screen.table.keys) == 3)
        await pilot.press("a")
        billing = set(service.matching_ids("billing"))
        await until(pilot, lambda: screen.marks == billing, "mark all matching")
        assert all(cell(screen, key_id, "mark") == "[x]" for key_id in billing)
        assert "3 marked" in plain(screen.query_one("#info", Static))

        await pilot.press("u")
        assert screen.marks == set()
        assert all(cell(screen, key_id, "mark") == "[ ]" for key_id in billing)


@tui
async def test_bulk_revoke_of_marked_keys_lists_skipped_ones(service, clock):
    one = service.create_key("one").key
    two = service.create_key("two").key
    gone = service.create_key("gone").key
    old = service.create_key("old", expires="1d").key
    untouched = service.create_key("untouched").key
    service.revoke_key(gone.id)
    clock.advance(days=2)  # "old" has expired now
    app = make_app(service, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        for key_id in (one.id, two.id, gone.id, old.id):
            await go_to(pilot, screen, key_id)
            await pilot.press("space")
        assert screen.marks == {one.id, two.id, gone.id, old.id}
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        assert app.focused is dialog.query_one("#cancel", Button)  # Cancel by default
        text = screen_text(dialog)
        assert "irreversible" in text and "2 keys" in text
        assert one.id in text and two.id in text
        assert "2 marked keys will be skipped" in text
        assert f"gone{' ' * 31}{gone.id}  already revoked" in text  # the name, ID and why
        assert f"{old.id}  expired" in text

        await pilot.press("y")
        await until(pilot, lambda: statuses(service)[one.id] == "revoked", "the revoke")
        now = statuses(service)
        assert now[two.id] == "revoked"
        assert now[untouched.id] == "active" and now[old.id] == "expired"
        await until(pilot, lambda: not screen.marks and isinstance(app.screen, MainScreen))


@pytest.mark.parametrize("cancel", ["escape", "n", "enter"])
@tui
async def test_revoke_dialog_cancels_without_any_change(service, cancel):
    keys = [service.create_key(f"key {i}").key for i in range(3)]
    before_events = event_count(service)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("a")
        await until(pilot, lambda: len(screen.marks) == 3)
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        assert app.focused is dialog.query_one("#cancel", Button)
        await pilot.press(cancel)  # enter presses the focused button: Cancel
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the dialog to close")
        await pilot.pause(0.2)
    assert all(status == "active" for status in statuses(service).values())
    assert len(statuses(service)) == len(keys)
    assert event_count(service) == before_events


@tui
async def test_revoke_without_marks_revokes_the_key_under_the_cursor(service):
    service.create_key("a")
    target = service.create_key("b").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await go_to(pilot, screen, target.id)
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        assert "Revoke 1 key" in dialog.title_text
        await pilot.press("y")
        await until(pilot, lambda: statuses(service)[target.id] == "revoked")
        assert list(statuses(service).values()).count("revoked") == 1
        await until(pilot, lambda: cell(screen, target.id, "status") == "revoked")


# -- replace, reveal and copy ------------------------------------------------------------------


@tui
async def test_replace_shows_new_secret_copy_and_forget(service):
    issued = service.create_key("billing worker")
    old_secret = issued.secret
    assert service.verify(old_secret).valid
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("r")
        dialog = await modal(app, pilot, ReasonModal)
        assert app.focused is dialog.query_one("#cancel", Button)
        assert "apps using the old key will fail" in screen_text(dialog)
        await pilot.press("y")
        reveal = await modal(app, pilot, RevealModal)
        new_secret = plain(reveal.query_one("#secret", Static))
        assert keyformat.parse_secret(new_secret) is not None, "not a keytui secret"
        assert new_secret != old_secret
        assert not service.verify(old_secret).valid  # takes effect at once
        result = service.verify(new_secret)
        assert result.valid and result.key_id == issued.key.id

        await pilot.press("escape")  # closing before copying asks once more
        assert app.screen is reveal
        assert "not copied" in plain(reveal.query_one("#warning", Static))

        await pilot.press("c")
        assert app.clipboard == new_secret
        assert str(reveal.query_one("#copy", Button).label) == "Copied!"

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the reveal to close")
        assert app.clipboard != new_secret
        assert new_secret not in app.clipboard
        assert reveal._secret is None
        assert all(new_secret not in str(n.message) for n in notifications(app))


@tui
async def test_reveal_closes_on_second_esc_without_copying(service):
    service.create_key("k")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("r")
        await modal(app, pilot, ReasonModal)
        await pilot.press("y")
        reveal = await modal(app, pilot, RevealModal)
        await pilot.press("escape")
        assert app.screen is reveal
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.clipboard == ""


# -- create ------------------------------------------------------------------------------------


async def open_new_key(app: KeytuiApp, pilot: Pilot) -> NewKeyModal:
    await started(app, pilot)
    await pilot.press("n")
    form = await modal(app, pilot, NewKeyModal)
    # The form fills its choices (owners, roles, expiries) from a worker.
    await until(
        pilot, lambda: len(form.query_one("#expires", Select)._options) > 2, "the form's choices"
    )
    return form  # type: ignore[return-value]


@tui
async def test_create_with_ctrl_s_from_any_field_then_reveal_and_copy(service):
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new_key(app, pilot)
        assert app.focused is form.query_one("#name", Input)
        await pilot.press(*"ci deploy")
        await pilot.press("tab")  # to the description: ctrl+s works from here too
        assert app.focused is form.query_one("#description", Input)
        await pilot.press(*"from ci", "ctrl+s")
        reveal = await modal(app, pilot, RevealModal)
        secret = plain(reveal.query_one("#secret", Static))
        created = [k for k in service.list_keys().keys if k.name == "ci deploy"]
        assert len(created) == 1 and created[0].description == "from ci"
        assert created[0].owner == "alice"
        result = service.verify(secret)
        assert result.valid and result.key_id == created[0].id
        await pilot.press("c")
        assert app.clipboard == secret
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.clipboard != secret
        await until(pilot, lambda: "ci deploy" in names(app.screen))


@tui
async def test_create_shows_a_bad_name_beside_the_name_field(service):
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new_key(app, pilot)
        await pilot.press("space", "ctrl+s")  # a name of blanks only
        error = form.query_one("#name-error", Static)
        await until(pilot, lambda: plain(error), "the name error")
        assert "name cannot be empty" in plain(error) and error.display
        assert app.screen is form
    assert service.count_keys() == 0


@tui
async def test_create_shows_a_bad_date_beside_the_expiry(service):
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new_key(app, pilot)
        await pilot.press(*"dated")
        form.query_one("#expires", Select).value = "date"
        await pilot.pause()
        date = form.query_one("#date", Input)
        assert not date.disabled and app.focused is date
        await pilot.press(*"2026-13-40", "ctrl+s")
        error = form.query_one("#expires-error", Static)
        await until(pilot, lambda: plain(error), "the expiry error")
        assert "2026-13-40" in plain(error) or "date" in plain(error)
        assert plain(form.query_one("#name-error", Static)) == ""

        date.value = "2020-01-01"  # in the past
        await pilot.press("ctrl+s")
        await until(pilot, lambda: plain(error) and "2026-13-40" not in plain(error))
        assert app.screen is form
    assert service.count_keys() == 0


@tui
async def test_create_over_the_max_keys_limit_says_so_beside_the_owner(service):
    service.update_settings(max_keys_per_user=1)
    service.create_key("the only one")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new_key(app, pilot)
        await pilot.press(*"one too many", "ctrl+s")
        error = form.query_one("#owner-error", Static)
        await until(pilot, lambda: plain(error), "the limit error")
        assert "maximum per user (1)" in plain(error) and error.display
        assert app.screen is form
        await pilot.press("escape")
        await modal(app, pilot, ConfirmModal)  # the form is filled in: discard it?
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
    assert service.count_keys() == 1


@tui
async def test_enter_on_the_last_field_creates(service):
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_new_key(app, pilot)
        await pilot.press(*"by enter")
        form.query_one("#allowed_hosts", Input).focus()
        await pilot.press(*"10.0.0.0/8", "enter")
        await modal(app, pilot, RevealModal)
    [key] = service.list_keys().keys
    assert key.name == "by enter" and key.allowed_hosts == ("10.0.0.0/8",)


@tui
async def test_an_impatient_second_ctrl_s_or_esc_does_not_lose_a_secret(service, monkeypatch):
    create_key = service.create_key

    def slow_create(*args, **kwargs):  # argon2 at full cost takes a noticeable moment
        time.sleep(0.3)
        return create_key(*args, **kwargs)

    monkeypatch.setattr(service, "create_key", slow_create)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await open_new_key(app, pilot)
        await pilot.press(*"once", "ctrl+s", "ctrl+s", "escape")
        reveal = await modal(app, pilot, RevealModal)
        await pilot.pause(0.5)
        assert app.screen is reveal
        [key] = service.list_keys().keys
        assert service.verify(plain(reveal.query_one("#secret", Static))).key_id == key.id


# -- delete and rename -------------------------------------------------------------------------


@tui
async def test_delete_removes_the_key(service):
    keep = service.create_key("keep").key
    doomed = service.create_key("doomed").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await go_to(pilot, screen, doomed.id)
        await pilot.press("d")
        dialog = await modal(app, pilot, ReasonModal)
        assert app.focused is dialog.query_one("#cancel", Button)
        assert "removes the key entirely" in screen_text(dialog)
        await pilot.press("y")
        await until(pilot, lambda: [k.id for k in screen.table.keys] == [keep.id])
    with pytest.raises(NotFound):
        service.get_key(doomed.id)
    assert service.get_key(keep.id).status == "active"


@tui
async def test_rename_changes_name_and_description(service):
    key = service.create_key("old name").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("e")
        form = await modal(app, pilot, RenameModal)
        name = form.query_one("#name", Input)
        assert app.focused is name and name.value == "old name"
        await pilot.press("ctrl+u", *"new name", "tab", *"what it is for", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await until(pilot, lambda: names(screen) == ["new name"])
    renamed = service.get_key(key.id)
    assert (renamed.name, renamed.description) == ("new name", "what it is for")


@tui
async def test_rename_with_an_empty_name_shows_the_error_beside_it(service):
    key = service.create_key("stays").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("e")
        form = await modal(app, pilot, RenameModal)
        await pilot.press("ctrl+u", "ctrl+s")
        error = form.query_one("#name-error", Static)
        await until(pilot, lambda: plain(error))
        assert "empty" in plain(error)
    assert service.get_key(key.id).name == "stays"


@tui
async def test_enter_opens_the_details_and_esc_comes_back(service):
    key = service.create_key("[i]detailed", description="what it does").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("enter")
        details = await modal(app, pilot, KeyDetailsScreen)
        fields = details.query_one("#field-table", Static)
        await until(pilot, lambda: key.id in plain(fields), "the key's fields")
        assert "[i]detailed" in plain(fields) and "what it does" in plain(fields)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)


# -- roles and read-only -----------------------------------------------------------------------


@tui
async def test_developer_sees_others_keys_greyed_and_the_service_refuses(service, open_as):
    service.add_user("bob", "developer")
    alices = service.create_key("alice's").key
    bobs = service.create_key("bob's", owner="bob").key
    bob = open_as("bob")
    app = make_app(bob, clock=bob.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await go_to(pilot, screen, alices.id)
        bindings = screen.active_bindings
        for key in ("r", "x", "d", "e"):
            assert bindings[key].enabled is False, key  # shown, greyed out
        assert bindings["n"].enabled is True
        for key in ("r", "x", "d"):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert isinstance(app.screen, MainScreen), key
        await go_to(pilot, screen, bobs.id)
        assert all(screen.active_bindings[key].enabled for key in ("r", "x", "d", "e"))
    assert service.get_key(alices.id).status == "active"
    with pytest.raises(PermissionDenied):
        bob.replace_key(alices.id)
    with pytest.raises(PermissionDenied):
        bob.delete_keys([alices.id])
    assert bob.plan_revoke([alices.id]).skipped[0].reason == "not yours (owner alice)"


@tui
async def test_developer_bulk_revoke_skips_keys_that_are_not_theirs(service, open_as):
    service.add_user("bob", "developer")
    alices = service.create_key("alice's").key
    bobs = service.create_key("bob's", owner="bob").key
    bob = open_as("bob")
    app = make_app(bob, clock=bob.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("a")
        await until(pilot, lambda: len(screen.marks) == 2)
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        text = screen_text(dialog)
        assert "1 key of 1 owner will stop working" in text
        assert f"{alices.id}  not yours (owner alice)" in text
        await pilot.press("y")
        await until(pilot, lambda: statuses(service)[bobs.id] == "revoked")
    assert statuses(service)[alices.id] == "active"


@tui
async def test_viewer_cannot_create(service, open_as):
    service.add_user("dave", "viewer")
    service.create_key("something")
    dave = open_as("dave")
    app = make_app(dave, clock=dave.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        assert screen.active_bindings["n"].enabled is False
        await pilot.press("n")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MainScreen)
    with pytest.raises(PermissionDenied):
        dave.create_key("nope")
    assert service.count_keys() == 1


CHANGING_KEYS = ("n", "e", "r", "x", "d", "S", "space", "a", "u")


@tui
async def test_read_only_hides_changing_actions_and_their_keys_do_nothing(service):
    keys = [service.create_key(f"key {i}").key for i in range(3)]
    before = (statuses(service), event_count(service))
    app = make_app(service, clock=service.clock, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        active = screen.active_bindings
        for key in CHANGING_KEYS:
            assert key not in active, key
        assert {"slash", "question_mark", "q", "enter", "E"} <= set(active)
        commands = {command.title for command in app.get_system_commands(screen)}
        assert not commands & {"New", "Rename", "Replace", "Revoke", "Delete", "Settings", "Mark"}
        for key in CHANGING_KEYS:
            await pilot.press(key, "y")
            await pilot.pause(0.05)
            assert isinstance(app.screen, MainScreen), key
        assert screen.marks == set()
        await pilot.pause(0.2)
    assert (statuses(service), event_count(service)) == before
    assert len(before[0]) == len(keys)


# -- stored text is data -----------------------------------------------------------------------


@tui
async def test_markup_and_escape_sequences_in_names_show_as_text(service):
    markup = service.create_key("[b]x").key
    evil_name = "evil\x1b]52;c;ZXZpbA==\x07 [red]y"
    with service.db.write() as session:  # validation refuses control characters: go around it
        session.add(
            Key(
                key_id="evil000001",
                name=evil_name,
                description="",
                owner="alice",
                role="read-only",
                secret_hash="x",
                created_at=service.now(),
                updated_at=service.now(),
                use_count=0,
                allowed_hosts="[]",
            )
        )
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        assert cell(screen, markup.id, "name") == "[b]x"
        shown = cell(screen, "evil000001", "name")
        assert "\x1b" not in shown and "\x07" not in shown
        assert shown == "evil\\x1b]52;c;ZXZpbA==\\x07 [red]y"
        svg = app.export_screenshot()
        assert "\x1b" not in svg
        assert "[b]x" in svg
        # and in the dialogs that name the key
        await go_to(pilot, screen, "evil000001")
        await pilot.press("d")
        dialog = await modal(app, pilot, ReasonModal)
        assert "\x1b" not in screen_text(dialog)
        assert "evil\\x1b]52" in screen_text(dialog)
        await pilot.press("n")


# -- palette and help ---------------------------------------------------------------------------


@tui
async def test_palette_has_our_actions_and_no_screenshot(service):
    service.create_key("k")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        titles = [command.title for command in app.get_system_commands(screen)]
        assert not any("screenshot" in title.lower() for title in titles)
        for title in (
            "Search",
            "New",
            "Rename",
            "Replace",
            "Revoke",
            "Delete",
            "Events",
            "Settings",
            "Help",
            "Mark all matching",
            "Active keys",
        ):
            assert title in titles, title


@tui
async def test_help_lists_every_main_screen_binding(service):
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=(120, 60)) as pilot:
        screen = await started(app, pilot)
        await pilot.press("question_mark")
        help_screen = await modal(app, pilot, HelpScreen)
        text = "\n".join(strip.text for strip in help_screen._compositor.render_strips())
        for binding in MainScreen.BINDINGS:
            assert (binding.tooltip or binding.description) in text, binding.description
            assert key_label(binding.key) in text, binding.key
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)


# -- the window of rows --------------------------------------------------------------------------


@tui
async def test_g_G_and_moving_past_the_window_load_the_next_rows(service):
    seed_demo(service, 300)
    everything = service.list_keys(KeyQuery(limit=300)).keys
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        info = screen.query_one("#info", Static)
        assert len(screen.table.keys) == 100
        assert "Keys 1–100 of 300" in plain(info)

        await pilot.press("G")
        await until(pilot, lambda: screen.window.start == 200, "the last window")
        assert screen.table.current.id == everything[-1].id
        assert "Keys 201–300 of 300" in plain(info)

        await pilot.press("g")
        await until(pilot, lambda: screen.window.start == 0, "the first window")
        assert screen.table.current.id == everything[0].id

        screen.table.move_cursor(row=99)
        await pilot.pause()
        await pilot.press("down")
        await until(pilot, lambda: screen.window.start > 0, "the next window")
        assert screen.table.current.id == everything[100].id
        assert "of 300" in plain(info)
        await pilot.press("j")
        await until(pilot, lambda: screen.table.current.id == everything[101].id)
        await pilot.press("up", "up")
        await until(pilot, lambda: screen.table.current.id == everything[99].id)


# -- refusals and errors -------------------------------------------------------------------------


@tui
async def test_an_unknown_user_is_told_how_to_get_in(service, open_as):
    service.create_key("secret stuff")
    mallory = open_as("mallory")
    app = make_app(mallory, clock=mallory.clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.user_error, "the refusal")
        screen = app.screen
        problem = plain(screen.query_one("#problem", Static))
        assert "'mallory' is not a keytui user" in problem
        assert "keytui users add mallory" in problem
        assert screen.table.keys == []
        await pilot.press("n")
        await pilot.pause(0.1)
        assert isinstance(app.screen, MainScreen)
    assert service.count_keys() == 1


@tui
async def test_a_service_error_becomes_a_one_line_notification(service, open_as):
    key = service.create_key("racing").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("r")
        await modal(app, pilot, ReasonModal)
        open_as("alice").revoke_key(key.id)  # someone else revokes it meanwhile
        await pilot.press("y")
        await until(pilot, lambda: notifications(app), "a notification")
        [note] = notifications(app)
        assert note.severity == "error"
        assert "\n" not in note.message
        assert "only active keys can be replaced" in note.message
        assert app.is_running and app.screen is screen


@tui
async def test_a_database_failure_becomes_a_notification_not_a_crash(service, monkeypatch):
    service.create_key("k")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)

        def broken(*_args, **_kwargs):
            raise OperationalError("SELECT", {}, Exception("disk I/O error\nline two"))

        monkeypatch.setattr(service, "list_keys", broken)
        await pilot.press("2")
        await until(pilot, lambda: notifications(app), "a notification")
        [note] = notifications(app)
        assert note.severity == "error" and "\n" not in note.message
        assert note.message.startswith("database error")
        assert app.is_running and app.screen is screen


@tui
async def test_expiring_keys_stand_out(service, clock):
    soon = service.create_key("soon", expires=clock() + timedelta(days=3)).key
    later = service.create_key("later", expires="90d").key
    app = make_app(service, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        assert cell(screen, soon.id, "status") == "expiring"
        assert cell(screen, later.id, "status") == "active"


@tui
async def test_the_first_window_paints_before_the_counts_then_the_total_follows(service):
    """First paint does not wait for counting every key (no unfiltered count_keys: the
    header's index-only counts bring the total right after)."""
    seed_demo(service, 300)
    counted: list[tuple] = []
    count_keys = service.count_keys

    def recording(*args, **kwargs):
        counted.append((args, kwargs))
        return count_keys(*args, **kwargs)

    service.count_keys = recording
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: isinstance(app.screen, MainScreen) and app.screen.window.loaded,
            "the first window",
        )
        assert plain(app.screen.query_one("#info", Static)).startswith("Keys 1–100 of ")
        await until(
            pilot, lambda: "of 300" in plain(app.screen.query_one("#info", Static)), "the total"
        )
    assert counted == []


@tui
async def test_a_search_shows_its_window_first_and_its_count_right_after(service, monkeypatch):
    """Counting a search's matches can cost more than finding the first hundred: the window
    is painted at once, the count follows (and a count for an older search is dropped)."""
    seed_demo(service, 300)
    gate = [threading.Event()]
    real_count = service.count_keys

    def slow_count(*args, **kwargs):
        if args and args[0]:  # a search's count waits until the test lets it go
            gate[0].wait(10)
        return real_count(*args, **kwargs)

    monkeypatch.setattr(service, "count_keys", slow_count)
    expected = service.list_keys(KeyQuery(search="e", limit=100))
    total = real_count("e", cap=10_000)
    assert expected.has_more and total > 100
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("slash", "e")
        await until(
            pilot,
            lambda: [k.id for k in screen.table.keys] == [k.id for k in expected.keys],
            "the window of matches",
        )
        info = screen.query_one("#info", Static)
        assert screen.window.match_count is None and "Keys 1–100 of … matching" in plain(info)
        gate[0].set()
        await until(pilot, lambda: screen.window.match_count == total, "the count")
        assert f"Keys 1–100 of {total:,} matching" in plain(info)
        await pilot.press("enter", "G")  # keep the filter; the last window, from the end
        await until(pilot, lambda: screen.window.tail == 0 and screen.table.keys, "the last window")
        assert f"of {total:,} matching" in plain(info)

        # G before the count is in: the last window waits for a count of its own
        gate[0] = threading.Event()
        await pilot.press("slash", "backspace", "a", "enter")
        await until(
            pilot,
            lambda: (
                screen.window.search == "a"
                and screen.table.keys
                and screen.window.match_count is None
            ),
            "the window for 'a'",
        )
        await pilot.press("G")
        await pilot.pause(0.2)
        gate[0].set()
        total_a = real_count("a", cap=10_000)
        await until(
            pilot,
            lambda: screen.window.tail == 0 and screen.window.match_count == total_a,
            "the last window for 'a'",
        )
        last = service.list_keys(KeyQuery(search="a", limit=100, descending=False)).keys
        assert screen.table.keys[-1].id == last[0].id


@tui
async def test_s_sorts_by_the_next_column_o_reverses_and_a_header_click_sorts(service):
    seed_demo(service, 150)

    def ids(sort: str, descending: bool) -> list[str]:
        page = service.list_keys(KeyQuery(sort=sort, descending=descending, limit=100))
        return [key.id for key in page.keys]

    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        assert screen.window.sort == "created_at"
        await pilot.press("s")  # the next sortable column on screen (the first, when the
        cycle = screen.table.sort_cycle  # sort's own column is not shown: Created at 120 wide)
        at = cycle.index("created_at") if "created_at" in cycle else -1
        following = cycle[(at + 1) % len(cycle)]
        await until(
            pilot,
            lambda: (
                screen.window.sort == following
                and [k.id for k in screen.table.keys] == ids(following, screen.window.descending)
            ),
            "the next column's order",
        )
        before = screen.window.descending
        await pilot.press("o")
        await until(
            pilot,
            lambda: (
                screen.window.descending is not before
                and [k.id for k in screen.table.keys] == ids(following, not before)
            ),
            "the reversed order",
        )
        assert ("▼" if not before else "▲") in plain(screen.query_one("#info", Static))
        # the Name header: by name, Z-A (or, already by name, the order reversed)
        first = not screen.window.descending if following == "name" else True
        await pilot.click("#keys", offset=(12, 0))
        await until(
            pilot,
            lambda: (
                screen.window.sort == "name"
                and screen.window.descending is first
                and [k.id for k in screen.table.keys] == ids("name", first)
            ),
            "by name",
        )
        await pilot.click("#keys", offset=(12, 0))  # the same header again: reversed
        await until(
            pilot,
            lambda: (
                screen.window.sort == "name"
                and screen.window.descending is not first
                and [k.id for k in screen.table.keys] == ids("name", not first)
            ),
            "by name, reversed",
        )


@tui
async def test_a_repeated_highlight_of_the_same_user_keeps_what_was_typed(service, open_as):
    """A table says a row is highlighted again once it has sized itself (late, on a loaded
    machine): that repeat must not overwrite the user form typed since (it turned a role change
    for erin into a no-op for alice); a move to another row still fills it."""
    from keytui.tui.screens.settings import SettingsScreen

    service.put_user("erin", "viewer")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("S")
        screen = await modal(app, pilot, SettingsScreen)
        login = screen.query_one("#user-login", Input)
        await until(pilot, lambda: login.value == "alice", "alice in the form")
        table = screen.query_one("#users", DataTable)
        login.value = "erin"
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        table.post_message(DataTable.RowHighlighted(table, table.cursor_row, row_key))
        await pilot.pause()
        await pilot.pause()
        assert login.value == "erin"
        table.move_cursor(row=1)
        await until(pilot, lambda: login.value == "erin" and table.cursor_row == 1, "erin's row")
        table.move_cursor(row=0)
        await until(pilot, lambda: login.value == "alice", "alice's row again")


@tui
async def test_settings_screen_saves_limits_and_adds_then_changes_a_user(service):
    from keytui.tui.screens.settings import SettingsScreen

    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("S")
        screen = await modal(app, pilot, SettingsScreen)
        await until(pilot, lambda: screen.query_one("#max-keys", Input).value == "100")
        screen.query_one("#max-keys", Input).value = "7"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: service.get_settings().max_keys_per_user == 7, "saved")

        screen.query_one("#user-login", Input).value = "erin"
        screen.query_one("#user-role", Select).value = "viewer"
        await pilot.click("#user-set")
        await until(
            pilot,
            lambda: any(u.login == "erin" and u.role == "viewer" for u in service.list_users()),
            "erin added",
        )
        await until(
            pilot, lambda: "erin" in {k.value for k in screen.query_one("#users", DataTable).rows}
        )
        await until(  # the reloaded table highlights its first row (alice) into the form
            pilot, lambda: screen.query_one("#user-login", Input).value == "alice", "alice"
        )
        added = " ".join(str(n.message) for n in notifications(app))
        assert "Added erin as viewer." in added  # (a question clears the notifications)
        app.clear_notifications()  # a toast over the button would take the click
        # A button ignores clicks for 0.2 s after a press (Textual's press effect): on a quick
        # machine erin was added and the form reloaded within that, and the click was lost.
        button = screen.query_one("#user-set", Button)
        await until(pilot, lambda: not button.has_class("-active"), "the press effect to end")
        screen.query_one("#user-login", Input).value = "erin"
        screen.query_one("#user-role", Select).value = "developer"
        await pilot.click("#user-set")
        await modal(app, pilot, ConfirmModal)  # a role change is asked first
        await pilot.press("y")
        await until(
            pilot,
            lambda: any(u.login == "erin" and u.role == "developer" for u in service.list_users()),
            "erin's new role",
        )
        await until(
            pilot,
            lambda: (
                "erin is now developer." in " ".join(str(n.message) for n in notifications(app))
            ),
            "the word of the change",
        )
