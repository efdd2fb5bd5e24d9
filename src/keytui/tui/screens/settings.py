"""Installation settings (admins): keys switch, limits, users and their roles, key roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Switch

from ...core.validate import USER_ROLES
from ...core.values import SettingsInfo, UserInfo
from ..app import KeytuiApp, describe_error
from ..format import day, text
from ..widgets.field_error import FieldError
from .confirm import ConfirmModal


class SettingsScreen(Screen[None]):
    app = getters.app(KeytuiApp)  # typed, so mypy checks self.app.service and the rest

    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("ctrl+s", "save", "Save settings", id="save"),
    ]

    def compose(self) -> ComposeResult:
        yield Label("Settings", classes="section-title")
        with Vertical(id="settings-form"):
            with Horizontal(classes="setting"):
                yield Label("API keys enabled (off: every verify fails, no new keys)")
                yield Switch(id="enabled")
            with Horizontal(classes="setting"):
                yield Label("Maximum expiry of new keys, in days (empty: none)")
                yield Input(id="max-expiry", type="integer", placeholder="none", compact=True)
            with Horizontal(classes="setting"):
                yield Label("Maximum active keys per user (1–1000)")
                yield Input(id="max-keys", type="integer", compact=True)
            with Horizontal(classes="setting"):
                yield Label("Require a reason to revoke, replace or delete keys")
                yield Switch(id="require-reason")
            yield Button("Save settings (ctrl+s)", id="save", variant="primary", compact=True)
        yield FieldError(id="settings-error")
        with Horizontal(id="people"):
            with Vertical(id="users-pane"):
                yield Label("Users", classes="section-title")
                yield DataTable(id="users", cursor_type="row")
                # Two lines, so that at 80 columns the login keeps its width and every
                # button stays on screen.
                with Horizontal(classes="inline-form"):
                    yield Input(placeholder="login", id="user-login", compact=True)
                    yield Select(
                        [(r, r) for r in USER_ROLES],
                        value="developer",
                        allow_blank=False,
                        id="user-role",
                    )
                with Horizontal(classes="inline-buttons"):
                    yield Button("Add / set role", id="user-set", compact=True)
                    yield Button("Remove user", id="user-remove", variant="error", compact=True)
            with Vertical(id="roles-pane"):
                yield Label("Key roles", classes="section-title")
                yield DataTable(id="roles", cursor_type="row")
                with Horizontal(classes="inline-form"):
                    yield Input(placeholder="role name", id="role-name", compact=True)
                with Horizontal(classes="inline-buttons"):
                    yield Button("Add", id="role-add", compact=True)
                    yield Button("Remove role", id="role-remove", variant="error", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#users", DataTable).add_columns("Login", "Role", "Since")
        self.query_one("#roles", DataTable).add_columns("Role")
        self.load()

    def load(self) -> None:
        service = self.app.service

        def fetch() -> tuple[SettingsInfo, list[UserInfo], list[str]]:
            return service.get_settings(), service.list_users(), service.list_roles()

        self.app.run_db(fetch, self._show)

    #: The settings and users as last read: what the form's edits are measured against.
    shown: SettingsInfo | None = None
    roles_of: dict[str, str] = {}

    def _show(self, loaded: tuple[SettingsInfo, list[UserInfo], list[str]]) -> None:
        settings, users, roles = loaded
        self.shown, self.roles_of = settings, {user.login: user.role for user in users}
        self.query_one("#enabled", Switch).value = settings.keys_enabled
        self.query_one("#max-expiry", Input).value = str(settings.max_expiry_days or "")
        self.query_one("#max-keys", Input).value = str(settings.max_keys_per_user)
        self.query_one("#require-reason", Switch).value = settings.require_reason
        table = self.query_one("#users", DataTable)
        table.clear()
        self.filled_from = None  # the first highlight of the reloaded table fills the form
        for user in users:
            table.add_row(text(user.login), Text(user.role), day(user.created_at), key=user.login)
        roles_table = self.query_one("#roles", DataTable)
        roles_table.clear()
        for role in roles:
            roles_table.add_row(text(role), key=role)

    def _run(self, call: Callable[[], Any], message: str | Callable[[Any], str]) -> None:
        """``call`` in a worker; then ``message`` (or ``message(result)``), and a reload."""

        def done(result: object) -> None:
            self.notify(escape(message(result) if callable(message) else message))
            self.load()

        def failed(exc: BaseException) -> None:
            self.query_one("#settings-error", FieldError).show(describe_error(exc))

        self.query_one("#settings-error", FieldError).clear()
        self.app.run_db(call, done, failed=failed)

    def action_save(self) -> None:
        enabled = self.query_one("#enabled", Switch).value
        require_reason = self.query_one("#require-reason", Switch).value
        expiry_text = self.query_one("#max-expiry", Input).value.strip()
        keys_text = self.query_one("#max-keys", Input).value.strip()
        try:
            expiry = int(expiry_text) if expiry_text else None
            max_keys = int(keys_text) if keys_text else None
        except ValueError:
            self.query_one("#settings-error", FieldError).show(
                "limits are whole numbers of days and keys"
            )
            return
        service = self.app.service

        def save() -> None:
            self._run(
                lambda: service.update_settings(
                    keys_enabled=enabled,
                    max_expiry_days=expiry,
                    max_keys_per_user=max_keys,
                    require_reason=require_reason,
                ),
                "Settings saved.",
            )

        if not enabled and (self.shown is None or self.shown.keys_enabled):
            from .dialogs import keys_off_question

            self._confirmed(keys_off_question(), save)
        else:
            save()

    def _confirmed(self, question: ConfirmModal, then: Callable[[], object]) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(question, answered)

    @property
    def edited(self) -> bool:
        """Does the form differ from the settings as read?"""
        if self.shown is None:
            return False
        expiry = self.query_one("#max-expiry", Input).value.strip()
        max_keys = self.query_one("#max-keys", Input).value.strip()
        return (
            self.query_one("#enabled", Switch).value != self.shown.keys_enabled
            or self.query_one("#require-reason", Switch).value != self.shown.require_reason
            or expiry != str(self.shown.max_expiry_days or "")
            or max_keys != str(self.shown.max_keys_per_user)
        )

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(table_id, DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_button_pressed(self, event: Button.Pressed) -> None:
        service = self.app.service
        button = event.button.id
        if button == "save":
            self.action_save()
        elif button == "user-set":
            login = self.query_one("#user-login", Input).value.strip()
            role = str(self.query_one("#user-role", Select).value)
            current = self.roles_of.get(login)

            def put() -> None:
                self._run(
                    lambda: service.put_user(login, role),
                    lambda put: (
                        f"Added {login} as {role}." if put[1] else f"{login} is now {role}."
                    ),
                )

            if current is not None and current != role:
                from .dialogs import role_change_question

                self._confirmed(role_change_question(login, current, role), put)
            else:
                put()
        elif button == "user-remove":
            user = self._selected("#users")
            if user:
                from .dialogs import remove_user_question

                self._confirmed(
                    remove_user_question(user),
                    lambda: self._run(
                        lambda: service.remove_user(user),
                        lambda active: (
                            f"Removed {user}; their {active} active keys still work."
                            if active
                            else f"Removed {user}."
                        ),
                    ),
                )
        elif button == "role-add":
            name = self.query_one("#role-name", Input).value.strip()
            self._run(lambda: service.add_role(name), f"Added key role {name}.")
        elif button == "role-remove":
            key_role = self._selected("#roles")
            if key_role:
                self._remove_role(key_role)

    def _remove_role(self, key_role: str) -> None:
        """Asks the service first (a role unrevoked keys grant is refused up front), then the
        question, then the removal."""
        from .dialogs import remove_role_question

        service = self.app.service
        error = self.query_one("#settings-error", FieldError)
        error.clear()

        def ask(_: None) -> None:
            self._confirmed(
                remove_role_question(key_role),
                lambda: self._run(
                    lambda: service.remove_role(key_role), f"Removed key role {key_role}."
                ),
            )

        self.app.run_db(
            lambda: service.check_remove_role(key_role),
            ask,
            failed=lambda exc: error.show(describe_error(exc)),
            hold_keys=True,  # the keys typed meanwhile go to the question
        )

    #: The user whose row last filled the form: a table says a row is highlighted again after a
    #: reload and when it has sized itself (late, on a loaded machine); only a move to another
    #: row, or the first highlight after a reload, fills the form, never the repeat, which
    #: overwrote what had been typed in it since.
    filled_from: str | None = None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "users" and event.row_key is not None:
            login = event.row_key.value or ""
            if login == self.filled_from:
                return
            self.filled_from = login
            self.query_one("#user-login", Input).value = login
            row = event.data_table.get_row(event.row_key)
            role = str(row[1])
            if role in USER_ROLES:
                self.query_one("#user-role", Select).value = role

    def action_back(self) -> None:
        """Back; with unsaved edits, only after asking."""
        if not self.edited:
            self.dismiss()
            return
        from .dialogs import discard_question

        self._confirmed(discard_question("the settings"), self.dismiss)
