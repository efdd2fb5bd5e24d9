"""The main screen's actions on keys: each asks the service first, then opens its dialog."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.markup import escape
from textual import events, getters
from textual.screen import Screen

from ...core.values import IssuedKey, KeyInfo, RevokePlan
from ..app import KeytuiApp, describe_error

if TYPE_CHECKING:
    from ..widgets.key_table import KeyTable
    from .confirm import ReasonModal

#: Actions the service is asked about before their dialog; those of them on one key.
CHECKED_ACTIONS = frozenset({"new_key", "rename", "replace", "revoke", "delete", "settings"})
KEY_ACTIONS = frozenset({"rename", "replace", "revoke", "delete"})


class KeyActions(Screen[None]):
    """New, details, rename, replace, revoke (one or the marked), delete: the main screen's
    actions on keys. The screen that uses this supplies the table, the marks and the reloads."""

    app = getters.app(KeytuiApp)
    marks: set[str]

    if TYPE_CHECKING:  # what MainScreen provides

        @property
        def table(self) -> KeyTable: ...
        def reload(self, offset: int | None = None, cursor: int | None = None) -> None: ...
        def refresh_counts(self) -> None: ...
        def update_footer(self) -> None: ...

    def action_details(self) -> None:
        key = self.table.current
        if key is not None:
            from .details import KeyDetailsScreen

            self.app.push_screen(KeyDetailsScreen(key.id))

    # Every action asks the service first (its rule: the role, the key's status now), so a
    # dialog opens only for what will be allowed; a refusal is one line, up front.

    SERVICE_ACTIONS = {"new_key": "create", "settings": "settings"}

    def _checked(
        self, action: str, key: KeyInfo | None, then: Callable[[KeyInfo | None], object]
    ) -> None:
        """``then(key as it is now)`` if the service would allow ``action``; else say why."""
        service, key_id = self.app.service, key.id if key else None
        service_action = self.SERVICE_ACTIONS.get(action, action)
        self.app.run_db(
            lambda: service.check(service_action, key_id),
            then,
            failed=self._refused,
            hold_keys=True,  # the keys typed meanwhile go to the dialog
        )

    def _refused(self, exc: BaseException) -> None:
        self.notify(escape(describe_error(exc)), severity="warning", timeout=5)
        self.update_footer()

    def on_key(self, event: events.Key) -> None:
        """A key whose action is greyed out for this user or key: say why (in the service's
        words) rather than do nothing."""
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled or active.node is not self:
            return
        action = active.binding.action
        if action not in CHECKED_ACTIONS or not self.app.service_ready:
            return
        key = self.table.current
        if action in KEY_ACTIONS and key is None:
            return
        if action == "revoke" and self.marks:
            key = None
        event.stop()
        self._checked(action, key, lambda _key: self.update_footer())

    def action_new_key(self) -> None:
        from .new_key import NewKeyModal

        self._checked("new_key", None, lambda _: self.app.push_screen(NewKeyModal(), self._issued))

    def _issued(self, issued: IssuedKey | None) -> None:
        if issued is None:
            return
        from .reveal import RevealModal

        self.reload(offset=0, cursor=0)
        self.refresh_counts()
        self.app.push_screen(RevealModal(issued))

    def action_rename(self) -> None:
        from .rename import RenameModal

        def renamed(changed: bool | None) -> None:
            if changed:
                self.reload()

        def ask(key: KeyInfo | None) -> None:
            if key is not None:
                self.app.push_screen(RenameModal(key), renamed)

        if self.table.current is not None:
            self._checked("rename", self.table.current, ask)

    def _ask_reason(
        self, question: Callable[[bool], ReasonModal], then: Callable[[str], object]
    ) -> None:
        """Open ``question(reason required?)``, as the installation's settings say now; then
        ``then(reason)`` unless cancelled."""
        service = self.app.service

        def answered(reason: str | None) -> None:
            if reason is not None:
                then(reason)

        self.app.run_db(
            lambda: service.get_settings().require_reason,
            lambda required: self.app.push_screen(question(required), answered),
            hold_keys=True,
        )

    def action_replace(self) -> None:
        from .dialogs import replace_question

        service = self.app.service

        def ask(key: KeyInfo | None) -> None:
            if key is None:
                return

            def go(reason: str) -> None:
                self.app.run_db(
                    lambda: service.replace_key(key.id, reason=reason),
                    self._issued,
                    hold_keys=True,
                )

            self._ask_reason(lambda required: replace_question(key, required), go)

        if self.table.current is not None:
            self._checked("replace", self.table.current, ask)

    def action_revoke(self) -> None:
        ids = (
            sorted(self.marks)
            if self.marks
            else ([self.table.current.id] if self.table.current else [])
        )
        if ids:
            service = self.app.service
            self.app.run_db(lambda: service.plan_revoke(ids), self._confirm_revoke, hold_keys=True)

    def _confirm_revoke(self, plan: RevokePlan) -> None:
        from .dialogs import nothing_to_revoke, revoke_question

        if not plan.revoke:
            self.notify(escape(nothing_to_revoke(plan)), severity="warning")
            return
        ids = [key.id for key in plan.revoke]
        service = self.app.service

        def go(reason: str | None) -> None:
            if reason is not None:
                self.app.run_db(lambda: service.revoke_keys(ids, reason=reason), self._revoked)

        self.app.push_screen(revoke_question(plan), go)

    def _revoked(self, result: RevokePlan) -> None:
        from .dialogs import revoked

        self.marks.clear()  # the batch is dealt with: revoked, or skipped for the reason shown
        self.notify(revoked(result))
        self.reload()
        self.refresh_counts()

    def action_delete(self) -> None:
        from .dialogs import delete_question, deleted

        service = self.app.service

        def ask(key: KeyInfo | None) -> None:
            if key is None:
                return

            def go(reason: str) -> None:
                def done(_keys: tuple[KeyInfo, ...]) -> None:
                    self.marks.discard(key.id)
                    self.notify(escape(deleted(key)))
                    self.reload()
                    self.refresh_counts()

                self.app.run_db(lambda: service.delete_keys([key.id], reason=reason), done)

            self._ask_reason(lambda required: delete_question(key, required), go)

        if self.table.current is not None:
            self._checked("delete", self.table.current, ask)
