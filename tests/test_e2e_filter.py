"""The filter language in a real terminal: the installed ``keytui`` in tmux. A leaked secret
pasted (bracketed paste) into the search box finds its key while the screen shows only
``kt_<id>_…``; a bad term is one line; ``owner:... status:active`` then ``a`` and ``x`` revoke
exactly the keys the filter matched."""

from __future__ import annotations

import sys

import pytest

from keytui.core import keyformat
from keytui.core.identity import current_login
from keytui.core.service import KeyService

from .conftest import FAST_HASHER
from .test_e2e_tmux import KEYTUI, TABLE_FOOTER, Terminal

pytestmark = [pytest.mark.e2e, pytest.mark.clock]  # keytui in tmux


def test_paste_a_secret_filter_and_revoke_what_matched(tmux_available, tmp_path):
    path = tmp_path / "e2e.db"
    me = current_login()
    service = KeyService.open(str(path), actor=me, hasher=FAST_HASHER)
    try:
        service.add_user("bob", "developer")
        leaked = service.create_key("leaked worker")
        mine = service.create_key("mailer batch").key.id
        bobs = [service.create_key(f"bob job {n}", owner="bob").key.id for n in range(2)]
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
            screen = term.wait(r"bob job 0")
            assert "bob job 1" not in screen and "mailer batch" not in screen
            term.press("Enter", then=TABLE_FOOTER)
            term.keys("a")
            term.wait(r"1 marked")
            term.keys("x")
            term.wait(r"irreversible")
            term.keys("y")
            term.wait(r"Revoked 1 key")
            term.keys("q")
            term.wait(r"\[program exited\]")
        finally:
            term.stop()
        assert service.get_key(bobs[0]).status == "revoked"
        assert service.get_key(bobcat).status == "active"
        assert service.get_key(mine).status == "active"
        assert service.get_key(leaked.key.id).status == "active"
    finally:
        service.close()
