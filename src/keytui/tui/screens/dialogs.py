"""The words of the destructive actions: the questions asked before replacing, revoking or
deleting keys (with a reason box: ReasonModal) and before sweeping settings changes
(ConfirmModal), and what is said after."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import cast, overload

from rich.text import Text

from ...core.values import KeyInfo, RevokePlan, Skipped
from ..format import text
from .confirm import ConfirmModal, ReasonModal

NAME_WIDTH = 34  # a key's name in the revoke list, cut with … beyond


def plural(count: int, noun: str = "key") -> str:
    return f"{count:,} {noun}{'s' if count != 1 else ''}"


def replace_question(key: KeyInfo, required: bool = False) -> ReasonModal:
    body = [
        Text.assemble("Replace ", text(key.name, "bold"), f" ({key.id})?"),
        Text(
            "Replacing takes effect at once: apps using the old key will fail on "
            "their next request."
        ),
        Text("The new secret is shown once, on the next screen."),
    ]
    return ReasonModal("Replace key", body, "Replace", required=required)


def nothing_to_revoke(plan: RevokePlan) -> str:
    reasons = ", ".join(sorted({s.reason for s in plan.skipped})) or "nothing marked"
    return f"Nothing to revoke: {reasons}."


def _line(*parts: str | Text | tuple[str, str]) -> Text:
    """One line of the revoke list: never wrapped, cut with … at the dialog's width."""
    line = Text.assemble(*parts)
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def _name(key_name: str | None) -> Text:
    shown = text(key_name or "-")
    shown.truncate(NAME_WIDTH, overflow="ellipsis", pad=True)
    return shown


def _id(key_id: str) -> Text:
    """A skipped key's ID as asked for (not found: whatever was given), cut to an ID's width."""
    shown = text(key_id, "dim")
    shown.truncate(10, overflow="ellipsis", pad=True)
    return shown


class PlanRows(Sequence[Text]):
    """The revoke dialog's list: every key to revoke, grouped by owner (a line with the count
    per owner, then theirs by name), then every skipped key with its name and why. Each line is
    made when it is drawn (TextLines asks for it), so 100,000 keys open at once."""

    def __init__(self, plan: RevokePlan) -> None:
        owners = Counter(key.owner for key in plan.revoke)
        entries: list[tuple[str, object]] = []
        current: str | None = None
        for key in sorted(plan.revoke, key=lambda key: (key.owner, key.name, key.id)):
            if key.owner != current:
                current = key.owner
                entries.append(("owner", (key.owner, owners[key.owner])))
            entries.append(("key", key))
        if plan.skipped:
            entries.append(("skipped", len(plan.skipped)))
            entries += [
                ("skip", item) for item in sorted(plan.skipped, key=lambda i: (i.reason, i.id))
            ]
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    @overload
    def __getitem__(self, index: int) -> Text: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Text]: ...
    def __getitem__(self, index: int | slice) -> Text | Sequence[Text]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        kind, value = self.entries[index]
        if kind == "owner":
            owner, count = cast("tuple[str, int]", value)
            return _line(text(owner, "bold"), f" — {plural(count)}")
        if kind == "key":
            key = cast("KeyInfo", value)
            return _line("  • ", _name(key.name), (f" {key.id}", "dim"), f"  {key.status}")
        if kind == "skipped":
            return _line((f"{plural(cast('int', value), 'marked key')} will be skipped:", "bold"))
        item = cast("Skipped", value)
        return _line("  • ", _name(item.name), " ", _id(item.id), "  ", text(item.reason))


def revoke_question(plan: RevokePlan) -> ReasonModal:
    """Every key that will be revoked, grouped by owner with a count per owner, and every
    marked key that is skipped, with its name and why (:class:`PlanRows`, drawn as the list
    scrolls); a plain warning when they are every active key of the installation
    (``plan.revoke`` is not empty)."""
    count = len(plan.revoke)
    owners = len({key.owner for key in plan.revoke})
    body: list[Text] = [
        Text(
            f"Revoking is irreversible. {plural(count)} of {plural(owners, 'owner')} "
            "will stop working at once and stay listed as revoked.",
            style="bold",
        ),
    ]
    if plan.every_active:
        body.append(
            Text(
                "Warning: these are ALL the active keys of this installation. After this, "
                "no key will verify.",
                style="bold red",
            )
        )
    return ReasonModal(
        f"Revoke {plural(count)}",
        body,
        "Revoke",
        required=plan.reason_required,
        rows=PlanRows(plan),
    )


def revoked(result: RevokePlan) -> str:
    message = f"Revoked {plural(len({key.id for key in result.revoke}))}."
    if result.skipped:
        message += f" Skipped {len(result.skipped):,}."
    return message


def delete_question(key: KeyInfo, required: bool = False) -> ReasonModal:
    body = [
        Text.assemble("Delete ", text(key.name, "bold"), f" ({key.id})?"),
        Text(
            "Deleting removes the key entirely: it disappears from the list and apps "
            "using it fail. Its events stay in the audit log. This cannot be undone."
        ),
    ]
    return ReasonModal("Delete key", body, "Delete", required=required)


def deleted(key: KeyInfo) -> str:
    return f"Deleted key {key.id}."


def discard_question(what: str) -> ConfirmModal:
    body = [Text(f"Close without saving {what}? What you typed in it is lost.")]
    return ConfirmModal("Discard changes", body, "Discard")


def keys_off_question() -> ConfirmModal:
    body = [
        Text("Turn API keys off for the whole installation?", style="bold"),
        Text(
            "Every verify will fail (DISABLED) until keys are enabled again, for every key "
            "and every service using one; no new keys can be created meanwhile."
        ),
    ]
    return ConfirmModal("Turn API keys off", body, "Turn off")


def remove_user_question(login: str) -> ConfirmModal:
    body = [
        Text.assemble("Remove the user ", text(login, "bold"), "?"),
        Text(
            "They can no longer use keytui on this database (the app, the command line). "
            "Their keys stay, and keep working until revoked."
        ),
    ]
    return ConfirmModal("Remove user", body, "Remove")


def role_change_question(login: str, old: str, new: str) -> ConfirmModal:
    may = {
        "admin": "everything: any key, settings, users and key roles",
        "developer": "create keys for themselves, and change only their own keys",
        "viewer": "read only: no changes at all",
    }
    body = [
        Text.assemble("Change ", text(login, "bold"), f"'s role from {old} to {new}?"),
        Text(f"As {new} they may do {may.get(new, new)}, at once, in every face."),
    ]
    return ConfirmModal("Change a user's role", body, "Change role")


def remove_role_question(role: str) -> ConfirmModal:
    body = [
        Text.assemble("Remove the key role ", text(role, "bold"), "?"),
        Text(
            "No new key can be given it, in any face (the app, the command line). Revoked "
            "keys that had it keep its name in their records."
        ),
    ]
    return ConfirmModal("Remove key role", body, "Remove")
