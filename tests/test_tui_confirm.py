"""Sweeping changes are confirmed, unsaved edits are not thrown away, and every action asks the
service before its dialog: a refusal comes up front, in one line, in the service's words."""

from __future__ import annotations

import pytest
from textual.widgets import Button, DataTable, Input, Select, Switch

from keytui.core.service import KeyService
from keytui.tui.app import KeytuiApp, make_app
from keytui.tui.screens.confirm import Question
from keytui.tui.screens.main import MainScreen
from keytui.tui.screens.new_key import NewKeyModal
from keytui.tui.screens.rename import RenameModal
from keytui.tui.screens.settings import SettingsScreen

from .test_tui import SIZE, go_to, modal, screen_text, started, tui, until


@pytest.fixture
def service(make_sqlite_service) -> KeyService:
    """alice, the database's admin; bob a developer, dave a viewer."""
    service = make_sqlite_service("alice", face="tui")
    service.add_user("bob", "developer")
    service.add_user("dave", "viewer")
    return service


def notices(app: KeytuiApp) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


async def question(app: KeytuiApp, pilot) -> Question:
    """The yes/no question (ConfirmModal) or the one with a reason box (ReasonModal)."""
    dialog = await modal(app, pilot, Question)
    assert isinstance(dialog, Question)
    assert app.focused is dialog.query_one("#cancel", Button)  # Cancel has the focus
    return dialog


async def open_settings(app: KeytuiApp, pilot) -> SettingsScreen:
    await started(app, pilot)
    await pilot.press("S")
    screen = await modal(app, pilot, SettingsScreen)
    await until(pilot, lambda: screen.shown is not None, "the settings to load")
    await pilot.pause()
    return screen  # type: ignore[return-value]


@tui
async def test_turning_keys_off_asks_first(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        settings = await open_settings(app, pilot)
        settings.query_one("#enabled", Switch).focus()
        await pilot.press("space", "ctrl+s")
        dialog = await question(app, pilot)
        assert "every verify will fail" in screen_text(dialog).lower().replace("\n", " ")
        await pilot.press("n")  # no: nothing changes
        await until(pilot, lambda: app.screen is settings)
        await pilot.pause(0.2)
        assert service.get_settings().keys_enabled is True
        await pilot.press("ctrl+s")
        await question(app, pilot)
        await pilot.press("y")
        await until(pilot, lambda: service.get_settings().keys_enabled is False, "keys off")


@tui
async def test_removing_a_user_or_changing_a_role_asks_first(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        settings = await open_settings(app, pilot)
        users = settings.query_one("#users", DataTable)
        users.move_cursor(row=[str(r.value) for r in users.rows].index("bob"))
        await pilot.pause()
        settings.query_one("#user-remove", Button).press()
        dialog = await question(app, pilot)
        assert "bob" in screen_text(dialog)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is settings)
        await pilot.pause(0.2)
        assert "bob" in {user.login for user in service.list_users()}
        settings.query_one("#user-remove", Button).press()
        await question(app, pilot)
        await pilot.press("y")
        await until(pilot, lambda: "bob" not in {u.login for u in service.list_users()})

        # dave, a viewer, to admin: asked; a new user is added without a question
        settings.query_one("#user-login", Input).value = "dave"
        settings.query_one("#user-role").value = "admin"
        settings.query_one("#user-set", Button).press()
        dialog = await question(app, pilot)
        assert "from viewer to admin" in screen_text(dialog)
        await pilot.press("y")
        await until(
            pilot, lambda: {u.login: u.role for u in service.list_users()}["dave"] == "admin"
        )
        settings.query_one("#user-login", Input).value = "erin"
        settings.query_one("#user-role").value = "developer"
        settings.query_one("#user-set", Button).press()
        await until(pilot, lambda: "erin" in {u.login for u in service.list_users()})
        assert app.screen is settings


@tui
async def test_removing_a_key_role_asks_first_and_a_role_in_use_is_refused_up_front(service):
    service.add_role("ci")
    service.add_role("deploy")
    service.create_key("deployer", role="deploy")
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        settings = await open_settings(app, pilot)
        roles = settings.query_one("#roles", DataTable)

        def pick(role: str) -> None:
            roles.move_cursor(row=[str(r.value) for r in roles.rows].index(role))

        pick("ci")
        await pilot.pause()
        settings.query_one("#role-remove", Button).press()
        dialog = await question(app, pilot)
        assert "ci" in screen_text(dialog) and "no new key" in screen_text(dialog).lower()
        await pilot.press("n")
        await until(pilot, lambda: app.screen is settings)
        await pilot.pause(0.2)
        assert "ci" in service.list_roles()
        settings.query_one("#role-remove", Button).press()
        await question(app, pilot)
        await pilot.press("y")
        await until(pilot, lambda: "ci" not in service.list_roles(), "ci removed")

        # a role an unrevoked key grants: said at once, in one line, and no question
        await until(pilot, lambda: "ci" not in [str(r.value) for r in roles.rows])
        pick("deploy")
        await pilot.pause()
        settings.query_one("#role-remove", Button).press()
        error = settings.query_one("#settings-error")
        await until(pilot, lambda: error.has_class("-shown"), "the refusal")
        assert "1 unrevoked key grants the role deploy" in str(error.render())
        assert app.screen is settings
        assert "deploy" in service.list_roles()


@tui
async def test_esc_on_edited_settings_asks_once(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        settings = await open_settings(app, pilot)
        settings.query_one("#max-keys", Input).value = "7"
        await pilot.press("escape")
        await question(app, pilot)
        await pilot.press("escape")  # cancel: back to the edits
        await until(pilot, lambda: app.screen is settings)
        assert settings.query_one("#max-keys", Input).value == "7"
        await pilot.press("escape")
        await question(app, pilot)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        assert service.get_settings().max_keys_per_user == 100
        # unedited: esc goes straight back
        await pilot.press("S")
        settings = await modal(app, pilot, SettingsScreen)
        await until(pilot, lambda: settings.shown is not None)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")


@tui
async def test_esc_on_a_filled_in_new_key_form_asks_once(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        await pilot.press("n")
        form = await modal(app, pilot, NewKeyModal)
        await pilot.press("escape")  # empty: closes at once
        await until(pilot, lambda: app.screen is main)
        await pilot.press("n")
        form = await modal(app, pilot, NewKeyModal)
        await pilot.press(*"billing")
        await pilot.press("escape")
        await question(app, pilot)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is form)
        assert form.query_one("#name", Input).value == "billing"
        await pilot.press("escape")
        await question(app, pilot)
        await pilot.press("y")
        await until(pilot, lambda: app.screen is main)
        # a choice changed, nothing typed: asked too
        await pilot.press("n")
        form = await modal(app, pilot, NewKeyModal)
        expires = form.query_one("#expires", Select)
        await until(pilot, lambda: expires.value == "90d", "the form's choices")
        expires.value = "30d"
        await pilot.press("escape")
        await question(app, pilot)
        await pilot.press("y")
        await until(pilot, lambda: app.screen is main)
    assert service.count_keys() == 0


@tui
async def test_esc_on_an_edited_rename_asks_once(service):
    key = service.create_key("billing worker", description="bills").key
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        await pilot.press("e")
        dialog = await modal(app, pilot, RenameModal)
        await pilot.press("escape")  # unedited: closes at once
        await until(pilot, lambda: app.screen is main)
        edits = (  # the name; the description
            (("end", *" (prod)"), "#name", "billing worker (prod)"),
            (("tab", "ctrl+u"), "#description", ""),
        )
        for keys, field, edited in edits:
            await pilot.press("e")
            dialog = await modal(app, pilot, RenameModal)
            box = dialog.query_one(field, Input)
            await pilot.press(*keys)
            await until(pilot, lambda b=box, e=edited: b.value == e, "the edit")
            await pilot.press("escape")
            await question(app, pilot)
            await pilot.press("n")  # cancel: back to the edit, kept
            await until(pilot, lambda d=dialog: app.screen is d)
            assert box.value == edited
            await pilot.press("escape")
            await question(app, pilot)
            await pilot.press("y")
            await until(pilot, lambda: app.screen is main)
    kept = service.get_key(key.id)
    assert (kept.name, kept.description) == ("billing worker", "bills")


@tui
async def test_replace_and_revoke_refuse_a_revoked_or_expired_key_up_front(service, clock):
    revoked = service.create_key("gone").key
    service.revoke_key(revoked.id)
    expired = service.create_key("old", expires="1d").key
    clock.advance(days=2)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        for key, status in ((revoked, "revoked"), (expired, "expired")):
            await go_to(pilot, main, key.id)
            for press, verb in (("r", "replaced"), ("x", "revoked")):
                await pilot.press(press)
                await until(pilot, lambda v=verb: f"only active keys can be {v}" in notices(app))
                assert f"is {status}" in notices(app)
                assert app.screen is main  # no dialog
                app.clear_notifications()
        await go_to(pilot, main, revoked.id)
        await pilot.press("d")  # deleting is allowed whatever the status: its question
        await question(app, pilot)


@tui
async def test_a_viewer_is_told_what_their_role_forbids(service, make_sqlite_service):
    key = service.create_key("something").key
    dave = make_sqlite_service("dave", face="tui")
    app = make_app(dave)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        for press, words in (("n", "create keys"), ("x", "revoke keys"), ("S", "change settings")):
            await pilot.press(press)
            await until(pilot, lambda w=words: f"a viewer may not {w}" in notices(app), words)
            assert app.screen is main
            app.clear_notifications()
    assert dave.get_key(key.id).status == "active"


@tui
async def test_greyed_footer_keys_look_greyed_in_16_colours(service):
    """Textual's dim key became bold yellow beside the bold red of the others in 16 colours
    (TERM=screen): a greyed key is now plain, in the words' muted colour."""
    revoked = service.create_key("gone").key
    service.revoke_key(revoked.id)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        await go_to(pilot, main, revoked.id)
        await until(pilot, lambda: main.query(".-disabled"), "a greyed footer key")
        greyed = {str(key.description): key for key in main.query("FooterKey.-disabled")}
        enabled = next(iter(main.query("FooterKey").exclude(".-disabled")))
        assert "Replace" in greyed and "Revoke" in greyed
        for key in greyed.values():
            letter = key.get_component_rich_style("footer-key--key")
            words = key.get_component_rich_style("footer-key--description")
            assert not letter.bold and letter.color == words.color
            assert letter.color != enabled.get_component_rich_style("footer-key--key").color
