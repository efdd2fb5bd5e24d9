"""Rename a key (name and description are all that can change after creation)."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from ...core.errors import InvalidInput
from ...core.values import KeyInfo
from ..app import KeytuiApp, describe_error
from ..format import text
from ..widgets.field_error import FieldError


class RenameModal(ModalScreen[bool]):
    app = getters.app(KeytuiApp)  # typed, so mypy checks self.app.service and the rest

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="cancel"),
        Binding("ctrl+s", "save", "Save", id="save"),
    ]

    def __init__(self, key: KeyInfo) -> None:
        super().__init__()
        self.key = key

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label(
                Text.assemble("Rename ", text(self.key.name, "bold"), f"  ({self.key.id})"),
                classes="dialog-title",
            )
            yield Label("Name")
            yield Input(self.key.name, id="name", max_length=100, compact=True)
            yield FieldError(id="name-error")
            yield Label("Description")
            yield Input(self.key.description, id="description", max_length=500, compact=True)
            yield FieldError(id="description-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "description":
            self.action_save()
        else:
            self.focus_next()

    @property
    def edited(self) -> bool:
        """Do the name or description differ from the key's?"""
        return (
            self.query_one("#name", Input).value != self.key.name
            or self.query_one("#description", Input).value != self.key.description
        )

    def action_cancel(self) -> None:
        """Close; with an edited name or description, only after asking once."""
        if not self.edited:
            self.dismiss(False)
            return
        from .dialogs import discard_question

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(False)

        self.app.push_screen(discard_question("the rename"), answered)

    def action_save(self) -> None:
        name = self.query_one("#name", Input).value
        description = self.query_one("#description", Input).value
        service, key_id = self.app.service, self.key.id
        for error in self.query(FieldError):
            error.clear()
        self.app.run_db(
            lambda: service.rename_key(key_id, name, description),
            lambda _key: self.dismiss(True),
            failed=self._failed,
            hold_keys=True,  # keys typed after ctrl+s go to the screen after the dialog
        )

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, InvalidInput) and exc.field in ("name", "description"):
            self.query_one(f"#{exc.field}-error", FieldError).show(str(exc))
        else:
            self.notify(escape(describe_error(exc)), severity="error")
