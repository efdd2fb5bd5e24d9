"""Many lines of text in a scrolling box, drawn only as they scroll into view."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


class TextLines(ScrollView):
    """``head`` (paragraphs, wrapped to the box's width) then ``rows`` (one line each, cut with
    … at the width), through Textual's line API (``render_line``): a row is asked of ``rows``
    only when it is drawn, so ``rows`` may make its lines on demand and a list of 100,000 keys
    costs no more to show than one of 10."""

    DEFAULT_CSS = """
    TextLines {
        height: auto;
        overflow-x: hidden;
        overflow-y: auto;
    }
    """

    def __init__(
        self,
        head: Sequence[Text],
        rows: Sequence[Text] = (),
        *,
        id: str | None = None,  # noqa: A002 - Textual's own name
        classes: str = "",
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.head = list(head)
        self.rows = rows
        self._width = -1
        self._wrapped: list[Text] = []

    @property
    def items(self) -> list[Text]:
        """Every line as given (the rows made now, all of them)."""
        return [*self.head, *self.rows]

    def _head(self, width: int) -> list[Text]:
        """The head as shown at ``width``: wrapped once per width."""
        width = max(width, 1)
        if width != self._width:
            wrapped: list[Text] = []
            for paragraph in self.head:
                wrapped.extend(paragraph.wrap(self.app.console, width))
            self._width, self._wrapped = width, wrapped
        return self._wrapped

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._head(width)) + len(self.rows)

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        self.virtual_size = Size(width, len(self._head(width)) + len(self.rows))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        head = self._head(width)
        index = y + self.scroll_offset.y
        if index < len(head):
            line = head[index].copy()
        elif index - len(head) < len(self.rows):
            line = self.rows[index - len(head)].copy()
        else:
            return Strip.blank(width, self.rich_style)
        line.truncate(width, overflow="ellipsis", pad=True)
        return Strip(list(line.render(self.app.console, end="")), width).apply_style(
            self.rich_style
        )
