"""The one line beside a form field that says, in words, what is wrong with it."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class FieldError(Static):
    """Hidden until there is something to say; the message is shown as text, never markup."""

    DEFAULT_CSS = """
    FieldError {
        display: none;
        color: $error;
        height: auto;
    }
    FieldError.-shown {
        display: block;
    }
    """

    def __init__(self, *, id: str) -> None:  # noqa: A002 - Textual's own name
        super().__init__("", id=id, classes="field-error")

    def show(self, message: str) -> None:
        self.update(Text(message))
        self.add_class("-shown")

    def clear(self) -> None:
        self.update("")
        self.remove_class("-shown")
