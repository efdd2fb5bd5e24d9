"""Many lines of text in a scrolling box, drawn only as they scroll into view."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


class TextLines(ScrollView):
    """Lines of text through Textual's line API (``render_line``): a list of 100,000 keys
    costs no more to show than one of 10. A line with ``no_wrap`` set stays one line, cut
    with … at the box's width; the others wrap to it."""

    DEFAULT_CSS = """
    TextLines {
        height: auto;
        overflow-x: hidden;
        overflow-y: auto;
    }
    """

    def __init__(self, lines: Sequence[Text], *, id: str | None = None, classes: str = "") -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.items = list(lines)
        self._width = -1
        self._lines: list[Text] = []

    def _layout(self, width: int) -> list[Text]:
        """The lines as shown at ``width``: wrapped once per width."""
        width = max(width, 1)
        if width != self._width:
            lines: list[Text] = []
            for item in self.items:
                if item.no_wrap:
                    lines.append(item)
                else:
                    lines.extend(item.wrap(self.app.console, width))
            self._width, self._lines = width, lines
        return self._lines

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._layout(width))

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        self.virtual_size = Size(width, len(self._layout(width)))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        lines = self._layout(width)
        index = y + self.scroll_offset.y
        if index >= len(lines):
            return Strip.blank(width, self.rich_style)
        line = lines[index].copy()
        line.truncate(width, overflow="ellipsis", pad=True)
        return Strip(list(line.render(self.app.console, end="")), width).apply_style(
            self.rich_style
        )
