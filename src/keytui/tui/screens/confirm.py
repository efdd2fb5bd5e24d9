"""A yes/no question before anything destructive. Cancel has the focus; ``esc`` or ``n`` cancel.

:class:`ConfirmModal` answers yes or no; :class:`ReasonModal` (revoke, replace, delete) also
has a reason box, and answers with the reason (``""`` for none) or None when cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from ...core import validate
from ...core.errors import InvalidInput
from ..widgets.field_error import FieldError
from ..widgets.text_lines import TextLines

ResultT = TypeVar("ResultT")


class Question(ModalScreen[ResultT]):
    """The frame both questions share: a title, a body that scrolls, Cancel and the action.
    ``rows``: a list after the body, one line each, drawn as it scrolls (thousands of keys)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="cancel"),
        Binding("n", "cancel", "No", show=False),
        Binding("y", "confirm", "Yes", id="confirm"),
        Binding("down", "scroll('down')", "Scroll down", show=False),
        Binding("up", "scroll('up')", "Scroll up", show=False),
        Binding("pagedown", "scroll('page_down')", "Page down", show=False),
        Binding("pageup", "scroll('page_up')", "Page up", show=False),
    ]

    #: Lines of the dialog that are not its body (borders, title, buttons): the body gets the
    #: rest of the terminal's height, so the buttons stay on screen at 80x24.
    RESERVED = 6
    BODY_MOST = 16  # a short question's body grows no taller than this

    def __init__(
        self,
        title: str,
        body: list[Text],
        confirm_label: str,
        *,
        rows: Sequence[Text] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm_label = confirm_label
        self.rows = rows
        self.long_list = rows is not None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog danger"):
            yield Label(Text(self.title_text), classes="dialog-title")
            if self.long_list:
                yield TextLines(
                    self.body, self.rows or (), id="question-body", classes="dialog-body"
                )
            else:
                with VerticalScroll(id="question-body", classes="dialog-body"):
                    for line in self.body:
                        yield Static(line)
            yield from self.compose_extra()
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (n)", id="cancel", variant="default", compact=True)
                yield Button(
                    f"{self.confirm_label} (y)", id="confirm", variant="error", compact=True
                )

    def compose_extra(self) -> ComposeResult:
        """What comes between the body and the buttons (nothing, here)."""
        yield from ()

    def on_mount(self) -> None:
        self.app.clear_notifications()  # none may cover the question or its buttons
        self.query_one("#cancel", Button).focus()

    def on_resize(self, event: events.Resize) -> None:
        room = max(3, event.size.height - self.RESERVED)
        most = room if self.long_list else min(room, self.BODY_MOST)
        self.query_one("#question-body", Widget).styles.max_height = most

    def action_scroll(self, where: str) -> None:
        body = self.query_one("#question-body", Widget)
        getattr(body, f"scroll_{where}")(animate=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        raise NotImplementedError

    def action_confirm(self) -> None:
        raise NotImplementedError


class ConfirmModal(Question[bool]):
    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_confirm(self) -> None:
        self.dismiss(True)


class ReasonModal(Question[str | None]):
    """A question with a reason box (``r`` goes to it). In the box, typed keys are text (``y``
    and ``n`` too) and ``enter`` confirms. ``required``: the installation requires a reason,
    so the question does not go ahead with an empty box (the service refuses it anyway)."""

    BINDINGS = [Binding("r", "reason", "Reason", id="reason")]
    RESERVED = Question.RESERVED + 4  # the box's label (and the line above it), box, error

    def __init__(
        self,
        title: str,
        body: list[Text],
        confirm_label: str,
        *,
        required: bool = False,
        rows: Sequence[Text] | None = None,
    ) -> None:
        super().__init__(title, body, confirm_label, rows=rows)
        self.required = required

    def compose_extra(self) -> ComposeResult:
        need = "required in this installation" if self.required else "optional"
        yield Label(
            Text.assemble(("Reason", "bold"), f" ({need}; r to type, enter to confirm)"),
            classes="reason-label",
        )
        yield Input(
            id="reason",
            placeholder="why (stored in the audit log)",
            max_length=validate.REASON_MAX,
            compact=True,
        )
        yield FieldError(id="reason-error")

    def action_reason(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#reason-error", FieldError).clear()

    def _refuse(self, message: str) -> None:
        self.query_one("#reason-error", FieldError).show(message)
        self.query_one("#reason", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_confirm(self) -> None:
        try:
            reason = validate.reason(self.query_one("#reason", Input).value)
        except InvalidInput as exc:
            self._refuse(str(exc))
            return
        if self.required and not reason:
            self._refuse(
                f"A reason is required in this installation: say why, then "
                f"{self.confirm_label.lower()}."
            )
            return
        self.dismiss(reason)
