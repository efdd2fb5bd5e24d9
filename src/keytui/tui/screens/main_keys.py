"""The main screen's keys (k9s, lazygit and less spell them so), each with an id so the footer,
the help screen, the command palette and a user keymap all see it; and which of their actions
need the service, greyed until it has opened."""

from __future__ import annotations

from textual.binding import Binding, BindingType

MAIN_BINDINGS: list[BindingType] = [
    Binding("question_mark", "help", "Help", id="help"),
    Binding(
        "slash",
        "search",
        "Search",
        id="search",
        tooltip="Search name, ID and owner as you type; enter keeps it, esc clears",
    ),
    Binding(
        "space",
        "toggle_mark",
        "Mark",
        id="mark",
        show=False,
        tooltip="Mark or unmark the key under the cursor",
    ),
    Binding("n", "new_key", "New", id="new", tooltip="Create a new key; its secret is shown once"),
    Binding("e", "rename", "Rename", id="rename", tooltip="Change the name and description"),
    Binding(
        "r",
        "replace",
        "Replace",
        id="replace",
        tooltip="Rotate: a new secret at once; the old one stops working",
    ),
    Binding(
        "x",
        "revoke",
        "Revoke",
        id="revoke",
        tooltip="Revoke the marked keys, or the one under the cursor (irreversible)",
    ),
    Binding(
        "d",
        "delete",
        "Delete",
        id="delete",
        tooltip="Delete the key under the cursor; its events stay",
    ),
    Binding(
        "enter",
        "details",
        "Details",
        id="details",
        show=False,
        tooltip="Every field, usage and events of the key",
    ),
    Binding("a", "mark_all", "Mark all matching", id="mark_all", show=False),
    Binding("u", "unmark_all", "Unmark all", id="unmark_all", show=False),
    Binding("E", "events", "Events", id="events", tooltip="The audit log"),
    Binding(
        "S",
        "settings",
        "Settings",
        id="settings",
        show=False,
        tooltip="Keys switch, limits, users and key roles (admins)",
    ),
    Binding("s", "cycle_sort", "Sort by the next column on screen", id="sort", show=False),
    Binding("o", "flip_order", "Reverse sort order", id="order", show=False),
    Binding("1", "status('all')", "All keys", id="status_all", show=False),
    Binding("2", "status('active')", "Active keys", id="status_active", show=False),
    Binding("3", "status('expired')", "Expired keys", id="status_expired", show=False),
    Binding("4", "status('revoked')", "Revoked keys", id="status_revoked", show=False),
    Binding("g", "top", "Top", id="top", show=False),
    Binding("G", "bottom", "Bottom", id="bottom", show=False),
    Binding("escape", "clear_search", "Clear search", id="clear", show=False),
    Binding(
        "ctrl+r",
        "refresh",
        "Refresh",
        id="refresh",
        show=False,
        tooltip="Read the keys and counts again now",
    ),
    Binding("q", "quit", "Quit", id="quit"),
]

# Actions that call the service from the event loop: greyed until it has opened.
NEEDS_SERVICE = frozenset(
    {
        "details",
        "new_key",
        "rename",
        "replace",
        "revoke",
        "delete",
        "mark_all",
        "events",
        "settings",
    }
)
