"""The one time a secret is shown: selectable, with a Copy that works over SSH (OSC 52)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ...core.values import IssuedKey
from ..format import text


class RevealModal(ModalScreen[None]):
    BINDINGS = [
        Binding("c", "copy", "Copy", id="copy"),
        Binding("escape", "close", "Close", id="close"),
    ]

    def __init__(self, issued: IssuedKey) -> None:
        super().__init__()
        self.key = issued.key
        self._secret: str | None = issued.secret
        self.copied = False
        self.warned = False

    def compose(self) -> ComposeResult:
        key = self.key
        with Vertical(classes="dialog reveal"):
            yield Label(
                Text.assemble("New secret for ", text(key.name, "bold"), f"  ({key.id})"),
                classes="dialog-title",
            )
            yield Static(Text(self._secret or "", style="bold"), id="secret")
            yield Static(
                Text(
                    "Copy it now: this secret will never be shown again. keytui keeps "
                    "only its argon2id hash.",
                    style="bold yellow",
                ),
                id="once",
            )
            yield Static("", id="warning")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Copy (c)", id="copy", variant="primary", compact=True)
                yield Button("Done (esc)", id="done", compact=True)

    def on_mount(self) -> None:
        self.query_one("#copy", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.action_close()

    def action_copy(self) -> None:
        if self._secret is None:
            return
        # OSC 52: the terminal the user sits at copies it, even over SSH. Never a local
        # clipboard library, which would copy to the server's clipboard.
        self.app.copy_to_clipboard(self._secret)
        self.copied = True
        self.query_one("#copy", Button).label = "Copied!"
        self.query_one("#warning", Static).update(
            Text("Copied to your terminal's clipboard.", style="green")
        )

    def action_close(self) -> None:
        if not self.copied and not self.warned:
            self.warned = True
            self.query_one("#warning", Static).update(
                Text(
                    "You have not copied the secret. Press esc again to close without it: "
                    "you would have to replace the key to get a new one.",
                    style="bold red",
                )
            )
            return
        self._forget()
        self.dismiss(None)

    def _forget(self) -> None:
        """Once closed, the secret is gone from the app: widget, this modal, app.clipboard."""
        if self._secret is not None and self.app.clipboard == self._secret:
            self.app._clipboard = ""  # Textual keeps the last copy; keep nothing
        self._secret = None
        self.query_one("#secret", Static).update("")
