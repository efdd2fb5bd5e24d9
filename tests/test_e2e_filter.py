"""The filter language in a real terminal: the installed ``keytui`` in tmux. A leaked secret
pasted (bracketed paste) into the search box finds its key while the screen shows only
``kt_<id>_…``; a bad term is one line; ``owner:... status:active`` then ``a`` and ``x`` revoke
exactly the keys the filter matched, with a reason typed in the dialog that ``keytui events``
then shows in every revoke's event."""

from __future__ import annotations

import subprocess
import sys

import pytest

from keytui.core import keyformat
from keytui.core.identity import current_login
from keytui.core.service import KeyService

from .conftest import FAST_HASHER
from .test_e2e_tmux import KEYTUI, TABLE_FOOTER, Terminal

pytestmark = [pytest.mark.e2e, pytest.mark.clock]  # keytui in tmux


REASON = "offboarding bob #123"


def test_paste_a_secret_filter_and_revoke_what_matched(tmux_available, tmp_path):
    path = tmp_path / "e2e.db"
    me = current_login()
    service = KeyService.open(str(path), actor=me, hasher=FAST_HASHER)
    try:
        service.add_user("bob", "developer")
        service.add_user("carol", "developer")
        leaked = service.create_key("leaked worker")
        mine = service.create_key("mailer batch").key.id
        carols = service.create_key("carol cron", owner="carol").key.id
        bobs = [service.create_key(f"bob job {n}", owner="bob").key.id for n in range(3)]
        service.revoke_keys([bobs[1]])
        bobcat = service.create_key("bobcat exporter").key.id
        assert KEYTUI.exists(), f"keytui is not installed next to {sys.executable}"
        term = Terminal([str(KEYTUI), "--db", str(path)])
        try:
            term.wait(r"bobcat exporter", timeout=60)
            term.press("/", then=TABLE_FOOTER, gone=True)
            term.tmux("set-buffer", "-b", "leak", leaked.secret)
            term.tmux("paste-buffer", "-p", "-b", "leak", "-t", "main")
            term.wait(r"mailer batch", gone=True)
            screen = term.wait(keyformat.elided(leaked.key.id).replace("…", "."))
            assert "leaked worker" in screen and leaked.secret not in screen
            assert leaked.secret.rsplit("_", 1)[-1] not in screen

            term.keys("Escape")
            term.wait(r"mailer batch")
            term.press("/", then=TABLE_FOOTER, gone=True)
            term.type("colour:red")
            term.wait(r"not a filter term")
            term.press("Escape", then=TABLE_FOOTER)  # clears the box
            term.press("/", then=TABLE_FOOTER, gone=True)
            term.type("owner:bob status:active")
            term.wait(r"bobcat exporter", gone=True)
            screen = term.wait(r"bob job 2")
            assert "bob job 0" in screen and "bob job 1" not in screen
            assert "mailer batch" not in screen and "carol cron" not in screen
            term.press("Enter", then=TABLE_FOOTER)
            term.keys("a")
            term.wait(r"2 marked")
            term.keys("x")
            screen = term.wait(r"irreversible")
            assert "bob — 2 keys" in screen and "Reason (optional" in screen
            term.keys("r")  # to the reason box; typed there, y and n are text
            term.type(REASON)
            term.wait(REASON)
            term.keys("Enter")
            term.wait(r"Revoked 2 keys")
            term.keys("q")
            term.wait(r"\[program exited\]")
        finally:
            term.stop()
        events = subprocess.run(
            [str(KEYTUI), "events", "--action", "revoke", "--db", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        revokes = [line for line in events.splitlines() if "key.revoke" in line]
        with_reason = [line for line in revokes if f'"reason": "{REASON}"' in line]
        assert {line.split()[4] for line in with_reason} == {bobs[0], bobs[2]}, events
        assert service.get_key(carols).status == "active"
        assert service.get_key(bobs[0]).status == "revoked"
        assert service.get_key(bobcat).status == "active"
        assert service.get_key(mine).status == "active"
        assert service.get_key(leaked.key.id).status == "active"
    finally:
        service.close()
