"""Create a key: name, description, owner, role, expiry, allowed hosts. Errors sit beside fields."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.markup import escape
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from ...core import validate
from ...core.errors import KeytuiError
from ...core.values import IssuedKey, KeyDefaults, SettingsInfo, UserInfo
from ..app import KeytuiApp, describe_error
from ..widgets.dialog_select import DialogSelect
from ..widgets.field_error import FieldError

EXPIRY_CHOICES = ((30, "30 days"), (60, "60 days"), (90, "90 days"), (365, "365 days"))
FIELDS = ("name", "description", "owner", "role", "expires", "allowed_hosts")
CHOICES = ("owner", "role", "expires")  # the drop-downs


def expiry_options(max_days: int | None) -> list[tuple[str, str]]:
    """The expiry choices the installation allows (its maximum bounds them)."""
    options = [
        (label, f"{days}d")
        for days, label in EXPIRY_CHOICES
        if max_days is None or days <= max_days
    ]
    if max_days is not None and not any(v == f"{max_days}d" for _, v in options):
        options.append((f"{max_days} days (the maximum)", f"{max_days}d"))
    if max_days is None:
        options.append(("never", "never"))
    options.append(("on a date…", "date"))
    return options


class NewKeyModal(ModalScreen[IssuedKey | None]):
    app = getters.app(KeytuiApp)  # typed, so mypy checks self.app.service and the rest

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="cancel"),
        Binding("ctrl+s", "create", "Create", id="create", priority=True),
    ]
    #: A create is on its way: a second ctrl+s or click must not make a second key (whose
    #: secret nobody would see), and esc must not drop the first one's secret.
    creating = False
    #: The drop-downs' values as the form opened with them (filled in from the service).
    chosen: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form new-key"):
            yield Label("New API key", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Label("Name")
                yield Input(
                    placeholder="e.g. billing worker (prod)",
                    id="name",
                    max_length=100,
                    compact=True,
                )
                yield FieldError(id="name-error")
                yield Label("Description (optional)")
                yield Input(id="description", max_length=500, compact=True)
                yield FieldError(id="description-error")
                with Horizontal(classes="field-row"):
                    with Vertical():
                        yield Label("Owner")
                        me = self.app.actor
                        yield DialogSelect(
                            [(me, me)], value=me, id="owner", allow_blank=False, compact=True
                        )
                        yield FieldError(id="owner-error")
                    with Vertical():
                        yield Label("Role")
                        yield DialogSelect(
                            [("read-only", "read-only")], id="role", allow_blank=False, compact=True
                        )
                        yield FieldError(id="role-error")
                with Horizontal(classes="field-row"):
                    with Vertical():
                        yield Label("Expires")
                        yield DialogSelect(
                            [("90 days", "90d")], id="expires", allow_blank=False, compact=True
                        )
                    with Vertical():
                        yield Label("Date (YYYY-MM-DD)")
                        # disabled, it shows the date the chosen expiry gives
                        yield Input(placeholder="", id="date", disabled=True, compact=True)
                yield FieldError(id="expires-error")
                yield Label("Allowed hosts (optional; names, IPs or CIDRs, comma-separated)")
                yield Input(placeholder="any host", id="allowed_hosts", compact=True)
                yield FieldError(id="allowed_hosts-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (esc)", id="cancel", compact=True)
                yield Button("Create (ctrl+s)", id="create", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        service = self.app.service

        def fetch() -> tuple[list[UserInfo], list[str], SettingsInfo, KeyDefaults]:
            return (
                service.list_users(),
                service.grantable_roles(),
                service.get_settings(),
                service.key_defaults(),
            )

        self.app.run_db(fetch, self._fill)

    def _fill(self, loaded: tuple[list[UserInfo], list[str], SettingsInfo, KeyDefaults]) -> None:
        users, roles, settings, defaults = loaded
        me = self.app.actor
        owner = self.query_one("#owner", Select)
        if self.app.role == "admin":
            owner.set_options([(u.login, u.login) for u in users])
        else:
            owner.set_options([(me, me)])
            owner.disabled = True
        owner.value = me
        role = self.query_one("#role", Select)
        role.set_options([(r, r) for r in roles])
        if roles:
            role.value = defaults.role if defaults.role in roles else roles[0]
        expires = self.query_one("#expires", Select)
        options = expiry_options(settings.max_expiry_days)
        expires.set_options(options)
        values = [v for _, v in options]
        expires.value = defaults.expires if defaults.expires in values else values[0]
        self.query_one("#date", Input).placeholder = self._date_of(expires.value)
        self.chosen = {field: self.query_one(f"#{field}", Select).value for field in CHOICES}

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "expires":
            date = self.query_one("#date", Input)
            date.disabled = event.value != "date"
            date.placeholder = self._date_of(event.value)
            if not date.disabled:
                date.focus()

    def _date_of(self, choice: object) -> str:
        """The date an expiry choice gives, by the service's own rule (``90d`` from now)."""
        now = self.app.now()
        if choice == "date":
            return f"YYYY-MM-DD, e.g. {now + timedelta(days=90):%Y-%m-%d}"
        if not isinstance(choice, str):
            return ""
        try:
            when = validate.expiry(choice, now)
        except KeytuiError:
            return ""
        return "never" if when is None else f"{when:%Y-%m-%d}"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "allowed_hosts":
            self.action_create()
        else:
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self.action_create()
        else:
            self.action_cancel()

    @property
    def edited(self) -> bool:
        """Was anything typed, or a choice changed?"""
        typed = [
            self.query_one(f"#{field}", Input).value.strip()
            for field in ("name", "description", "date", "allowed_hosts")
        ]
        changed = [
            self.query_one(f"#{field}", Select).value != value
            for field, value in self.chosen.items()
        ]
        return any(typed) or any(changed)

    def action_cancel(self) -> None:
        """Close; once filled in, only after asking (what was typed would be lost)."""
        if self.creating:
            return
        if not self.edited:
            self.dismiss(None)
            return
        from .dialogs import discard_question

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.app.push_screen(discard_question("the new key"), answered)

    def action_create(self) -> None:
        if self.creating:
            return
        for error in self.query(FieldError):
            error.clear()
        name = self.query_one("#name", Input).value
        description = self.query_one("#description", Input).value
        owner = self.query_one("#owner", Select).selection
        role = self.query_one("#role", Select).selection
        expires = self.query_one("#expires", Select).selection
        day = self.query_one("#date", Input).value if expires == "date" else None
        hosts = self.query_one("#allowed_hosts", Input).value.replace(",", " ").split()
        service, now = self.app.service, self.app.now()

        def create() -> IssuedKey:
            when: str | datetime | None = None if expires in (None, "never") else expires
            if day is not None:  # the date box takes a date only, and says so in its terms
                with validate.field("expires"):
                    when = validate.expiry_day(day, now)
            return service.create_key(
                name,
                description=description,
                owner=owner,
                role=role,
                expires=when,
                allowed_hosts=hosts,
            )

        self.creating = True
        # keys typed after ctrl+s go to the secret's dialog (c copies it), or back to the form
        self.app.run_db(create, self.dismiss, failed=self._failed, hold_keys=True)

    def _failed(self, exc: BaseException) -> None:
        self.creating = False
        field = getattr(exc, "field", None)
        message = describe_error(exc)
        if field in FIELDS:
            self.query_one(f"#{field}-error", FieldError).show(message)
        else:
            self.notify(escape(message), severity="error")
