"""The words of the main screen's destructive actions: the questions ConfirmModal asks before
replacing, revoking or deleting keys, and what is said after."""

from __future__ import annotations

from rich.text import Text

from ...core.values import KeyInfo, RevokePlan
from ..format import text
from .confirm import ConfirmModal

SHOWN = 8  # keys to revoke listed by name; the rest are counted
SKIPPED_SHOWN = 6  # skipped keys listed with their reason


def plural(count: int, noun: str = "key") -> str:
    return f"{count:,} {noun}{'s' if count != 1 else ''}"


def replace_question(key: KeyInfo) -> ConfirmModal:
    body = [
        Text.assemble("Replace ", text(key.name, "bold"), f" ({key.id})?"),
        Text(
            "Replacing takes effect at once: apps using the old key will fail on "
            "their next request."
        ),
        Text("The new secret is shown once, on the next screen."),
    ]
    return ConfirmModal("Replace key", body, "Replace")


def nothing_to_revoke(plan: RevokePlan) -> str:
    reasons = ", ".join(sorted({s.reason for s in plan.skipped})) or "nothing marked"
    return f"Nothing to revoke: {reasons}."


def revoke_question(plan: RevokePlan) -> ConfirmModal:
    """How many keys and which will be revoked, and which of the marked ones are skipped and
    why (``plan.revoke`` is not empty)."""
    count = len(plan.revoke)
    body: list[Text] = [
        Text(
            f"Revoking is irreversible. {plural(count)} will stop "
            "working at once and stay listed as revoked:",
            style="bold",
        ),
    ]
    for key in plan.revoke[:SHOWN]:
        body.append(Text.assemble("  • ", text(key.name), (f"  {key.id}", "dim")))
    if count > SHOWN:
        body.append(Text(f"  … and {count - SHOWN:,} more"))
    if plan.skipped:
        how_many = plural(len(plan.skipped), "marked key")
        body.append(Text(f"{how_many} will be skipped:", style="bold"))
        for skipped in plan.skipped[:SKIPPED_SHOWN]:
            body.append(Text(f"  • {skipped.id}: {skipped.reason}", style="dim"))
        if len(plan.skipped) > SKIPPED_SHOWN:
            more = len(plan.skipped) - SKIPPED_SHOWN
            body.append(Text(f"  … and {more:,} more", style="dim"))
    return ConfirmModal(f"Revoke {plural(count)}", body, "Revoke")


def revoked(result: RevokePlan) -> str:
    message = f"Revoked {plural(len({key.id for key in result.revoke}))}."
    if result.skipped:
        message += f" Skipped {len(result.skipped):,}."
    return message


def delete_question(key: KeyInfo) -> ConfirmModal:
    body = [
        Text.assemble("Delete ", text(key.name, "bold"), f" ({key.id})?"),
        Text(
            "Deleting removes the key entirely: it disappears from the list and apps "
            "using it fail. Its events stay in the audit log. This cannot be undone."
        ),
    ]
    return ConfirmModal("Delete key", body, "Delete")


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
