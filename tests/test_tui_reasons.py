"""The app's reason box (issue 12): revoke, replace and delete ask why; typing there is text
(``y`` and ``n`` too) and ``enter`` confirms; a required reason is asked for, not skipped; the
bulk revoke lists every key by owner and stays usable at 80x24; the settings switch; details
show why a key was revoked."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Input, Switch

from keytui.core.service import KeyService
from keytui.tui.app import make_app
from keytui.tui.screens.confirm import ReasonModal
from keytui.tui.screens.details import KeyDetailsScreen
from keytui.tui.screens.main import MainScreen
from keytui.tui.screens.reveal import RevealModal
from keytui.tui.widgets.field_error import FieldError
from keytui.tui.widgets.text_lines import TextLines

from .test_tui import SIZE, go_to, modal, screen_text, started, statuses, tui, until
from .test_tui_confirm import open_settings, question
from .test_tui_small import rendered

SMALL = (80, 24)


@pytest.fixture
def service(make_sqlite_service) -> KeyService:
    service = make_sqlite_service("alice", face="tui")
    for login in ("bob", "carol"):
        service.add_user(login, "developer")
    return service


def reasons(service: KeyService, action: str) -> list[str | None]:
    return [e.details.get("reason") for e in service.list_events(action=action, limit=1000)]


@tui
async def test_typing_y_and_n_in_the_box_is_text_and_enter_confirms(service):
    keys = [service.create_key(f"fleet {n}", owner="bob").key.id for n in range(3)]
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("a")
        await until(pilot, lambda: len(screen.marks) == 3, "all marked")
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        assert app.focused is dialog.query_one("#cancel", Button)  # Cancel by default
        await pilot.press("r")  # to the box
        box = dialog.query_one("#reason", Input)
        assert app.focused is box
        await pilot.press(*"yes, n-o y n")
        await pilot.pause()
        assert app.screen is dialog and box.value == "yes, n-o y n"
        assert set(statuses(service).values()) == {"active"}
        await pilot.press("enter")
        await until(pilot, lambda: set(statuses(service).values()) == {"revoked"}, "the revoke")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the dialog to close")
    assert reasons(service, "key.revoke") == ["yes, n-o y n"] * 3
    assert {e.key_id for e in service.list_events(action="key.revoke")} == set(keys)


@tui
async def test_a_required_reason_is_asked_for_and_an_empty_box_goes_nowhere(service):
    service.update_settings(require_reason=True)
    doomed = service.create_key("doomed").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await go_to(pilot, screen, doomed.id)
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        assert "required in this installation" in screen_text(dialog)
        error = dialog.query_one("#reason-error", FieldError)
        for attempt in ("y", "confirm-button", "enter-in-box", "blank"):
            if attempt == "y":
                await pilot.press("y")
            elif attempt == "confirm-button":
                dialog.query_one("#confirm", Button).press()
            elif attempt == "enter-in-box":  # (a refusal put the focus in the box)
                await pilot.press("enter")
            else:
                await pilot.press(*"   ", "enter")
            await until(pilot, lambda: error.has_class("-shown"), "the reason to be asked for")
            assert "A reason is required" in str(error.render())
            assert app.screen is dialog and app.focused is dialog.query_one("#reason", Input)
            assert service.get_key(doomed.id).status == "active"
            error.clear()
        await pilot.press(*"lost laptop", "enter")
        await until(pilot, lambda: service.get_key(doomed.id).status == "revoked", "the revoke")
    assert service.revocation_reason(doomed.id) == "lost laptop"


@tui
async def test_a_bad_reason_is_said_in_the_dialog(service):
    key = service.create_key("k")
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        box = dialog.query_one("#reason", Input)
        box.value = f"leaked {key.secret}"  # as a paste would put it there
        await pilot.press("r", "enter")
        error = dialog.query_one("#reason-error", FieldError)
        await until(pilot, lambda: error.has_class("-shown"), "the refusal")
        assert "may not hold a secret" in str(error.render())
        assert app.screen is dialog and service.get_key(key.key.id).status == "active"
        await pilot.press("escape")  # esc cancels from the box too
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the dialog to close")
    assert service.get_key(key.key.id).status == "active"
    assert reasons(service, "key.revoke") == []


@tui
async def test_replace_and_delete_take_a_reason(service):
    key = service.create_key("rotating").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await pilot.press("r")
        dialog = await modal(app, pilot, ReasonModal)
        assert "Reason (optional" in screen_text(dialog)
        await pilot.press("r", *"yearly rotation", "enter")
        reveal = await modal(app, pilot, RevealModal)
        await pilot.press("escape", "escape")
        await until(pilot, lambda: app.screen is screen and reveal is not app.screen)
        await go_to(pilot, screen, key.id)
        await pilot.press("d")
        await modal(app, pilot, ReasonModal)
        await pilot.press("y")  # no reason: none is stored
        await until(pilot, lambda: service.count_keys() == 0, "the delete")
    assert reasons(service, "key.replace") == ["yearly rotation"]
    assert reasons(service, "key.delete") == [None]


@tui
async def test_the_bulk_dialog_lists_every_key_by_owner_at_80x24(service):
    owners = {"alice": 3, "bob": 25, "carol": 12}
    for owner, count in owners.items():
        for n in range(count):
            service.create_key(f"{owner} service {n:02}", owner=owner)
    gone = service.create_key("gone").key
    service.revoke_key(gone.id)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SMALL) as pilot:
        screen = await started(app, pilot)
        await pilot.press("a")
        await until(pilot, lambda: len(screen.marks) == 41, "all marked")
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        body = dialog.query_one(TextLines)
        lines = [line.plain for line in body.items]
        assert "40 keys of 3 owners will stop working" in lines[0]
        assert any("ALL the active keys of this installation" in line for line in lines)
        for owner, count in owners.items():
            head = lines.index(f"{owner} — {count} keys")
            listed = lines[head + 1 : head + 1 + count]
            assert len(listed) == count and all(f"{owner} service" in line for line in listed)
        assert any("gone" in line and "already revoked" in line for line in lines)
        # at 80x24: the box and both buttons are on screen, the list scrolls to its end
        for widget in (
            dialog.query_one("#reason", Input),
            dialog.query_one("#cancel", Button),
            dialog.query_one("#confirm", Button),
        ):
            region = widget.region
            assert region.height and region.bottom <= SMALL[1], widget
        assert body.max_scroll_y > 0
        for _ in range(20):
            await pilot.press("pagedown")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y
        shown = "\n".join(rendered(dialog))
        assert "already revoked" in shown  # the last line of the list is on screen
        assert app.focused is dialog.query_one("#cancel", Button)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the dialog to close")
    assert service.counts().revoked == 1


@tui
async def test_the_settings_switch_and_details_show_the_reason(service):
    key = service.create_key("k").key
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        settings = await open_settings(app, pilot)
        switch = settings.query_one("#require-reason", Switch)
        assert switch.value is False
        switch.value = True
        await pilot.press("escape")  # an edited setting: asked once
        await question(app, pilot)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is settings)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: service.get_settings().require_reason, "the setting saved")
        await until(pilot, lambda: not settings.edited, "the settings to reload")
        await pilot.press("escape")
        screen = await modal(app, pilot, MainScreen)
        await go_to(pilot, screen, key.id)  # type: ignore[arg-type]
        await pilot.press("x")
        dialog = await modal(app, pilot, ReasonModal)
        assert dialog.required
        await pilot.press("r", *"compromised host", "enter")
        await until(pilot, lambda: service.get_key(key.id).status == "revoked", "the revoke")
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("enter")
        details = await modal(app, pilot, KeyDetailsScreen)
        await until(pilot, lambda: "compromised host" in "\n".join(rendered(details)), "reason")
    assert [e.details for e in service.list_events(action="settings.update")] == [
        {"require_reason": [False, True]}
    ]
