"""A drop-down whose open list stays inside its dialog's border.

Textual draws a Select's list on the screen's overlay layer, kept inside the screen only: near a
dialog's foot it ran over the dialog's border (the new-key form's expiry list did, at any size).
Here the list is held to the room left inside the dialog: below the field when it fits there (or
when there is more room below than above), else above the field; a list taller than its room
scrolls.
"""

from __future__ import annotations

from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import OptionList, Select


class DialogSelect(Select[str]):
    def watch_expanded(self, expanded: bool) -> None:
        if expanded:
            self.fit_list()

    def fit_list(self) -> None:
        """Bound the open list by the dialog's inside, the border and padding excluded."""
        try:
            inside = self.query_ancestor(".dialog", Widget).content_region
        except NoMatches:
            return
        overlay = self.query_one("SelectOverlay", OptionList)
        field = self.region
        wanted = overlay.option_count + overlay.styles.gutter.height
        below = inside.bottom - field.bottom
        above = field.y - inside.y
        if wanted <= below or below >= above:
            overlay.styles.max_height = max(below, 1)
            overlay.styles.offset = (0, 0)
        else:  # above the field, its foot on the line over the field
            height = min(wanted, above)
            overlay.styles.max_height = height
            overlay.styles.offset = (0, -(height + field.height))
