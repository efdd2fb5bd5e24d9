"""End to end in a real terminal: the installed ``keytui`` runs in tmux, read back from its pane.

Its own tmux server (``-L``), so it never touches anyone's session; ``set-clipboard on``, so the
app's OSC 52 copy lands in tmux's paste buffer, where ``show-buffer`` reads the secret back.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from keytui.core import keyformat
from keytui.core.identity import current_login
from keytui.core.service import KeyService

from .conftest import FAST_HASHER, altered

pytestmark = [pytest.mark.e2e, pytest.mark.clock]  # keytui in tmux

KEYTUI = Path(sys.executable).parent / "keytui"
TABLE_FOOTER = r"\? Help +/ Search"


class Terminal:
    """One tmux server with one pane running a command."""

    def __init__(self, command: list[str], size: tuple[int, int] = (120, 36)) -> None:
        self.socket = f"keytui-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        env = "env TERM=xterm-256color COLORTERM=truecolor"
        shell = f"{env} {shlex.join(command)}; echo '[program exited]'; sleep 60"
        self.tmux(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            str(size[0]),
            "-y",
            str(size[1]),
            shell,
            ";",
            "set",
            "-g",
            "set-clipboard",
            "on",
        )

    def tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if check and done.returncode:
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "main", *keys)

    def type(self, text: str) -> None:
        """Type as a person does, a key at a time. (Keys that arrive in one burst go to the
        widget focused when they arrive: Textual moves the focus only after "/" is handled.)"""
        for character in text:
            self.tmux("send-keys", "-t", "main", "-l", character)
            time.sleep(0.03)

    def press(self, key: str, then: str, gone: bool = False) -> str:
        """A key that moves the focus (or opens a screen), then wait for the screen to show it
        has (the footer changes with the focus): never a guessed moment."""
        self.keys(key)
        return self.wait(then, gone=gone)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "main")

    def wait(self, pattern: str, gone: bool = False, timeout: float = 30.0) -> str:
        """Wait until the screen matches ``pattern`` (or, with ``gone``, no longer does)."""
        end = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if bool(re.search(pattern, screen)) != gone:
                return screen
            if time.monotonic() > end:
                what = "to go" if gone else "to appear"
                raise AssertionError(f"timed out waiting for {pattern!r} {what}; screen:\n{screen}")
            time.sleep(0.1)

    def clipboard(self) -> str:
        return self.tmux("show-buffer", check=False)

    def stop(self) -> None:
        socket = self.tmux("display-message", "-p", "#{socket_path}", check=False).strip()
        self.tmux("kill-server", check=False)
        if socket:
            Path(socket).unlink(missing_ok=True)  # tmux leaves the socket file behind


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Path, KeyService, dict[str, str]]]:
    """A database whose admin is this OS login (as the app will act), with a few keys."""
    path = tmp_path / "e2e.db"
    service = KeyService.open(str(path), actor=current_login(), hasher=FAST_HASHER)
    ids = {
        name: service.create_key(name).key.id
        for name in ("billing worker (prod)", "search gateway", "mailer batch")
    }
    yield path, service, ids
    service.close()


def test_search_revoke_create_copy_and_verify_in_a_real_terminal(tmux_available, seeded):
    path, service, ids = seeded
    assert KEYTUI.exists(), f"keytui is not installed next to {sys.executable}"
    term = Terminal([str(KEYTUI), "--db", str(path)])
    try:
        term.wait(r"search gateway", timeout=60)
        term.wait(r"billing worker")

        # Search: only the billing key stays; enter keeps the filter and returns to the table.
        # The footer shows the table's keys ("? Help") only while the table has the focus.
        term.press("/", then=TABLE_FOOTER, gone=True)
        term.type("billing")
        term.wait(r"search gateway", gone=True)
        assert "billing worker" in term.screen()
        term.press("Enter", then=TABLE_FOOTER)

        # Revoke the key under the cursor: x, then y in the dialog.
        term.keys("x")
        term.wait(r"irreversible")
        term.keys("y")
        term.wait(r"Revoked 1 key")
        assert service.get_key(ids["billing worker (prod)"]).status == "revoked"
        assert service.get_key(ids["search gateway"]).status == "active"

        # Create a key: n, a name, ctrl+s; copy its secret with c.
        term.press("Escape", then=r"search gateway")
        term.press("n", then=r"New API key")  # painted after its on_mount focused the name
        term.type("e2e created")
        term.wait(r"e2e created")  # in the name field
        term.keys("C-s")
        term.wait(r"never be shown again")
        term.keys("c")
        term.wait(r"Copied!")
        secret = term.clipboard()
        assert keyformat.parse_secret(secret) is not None, repr(secret)

        term.keys("Escape")
        term.wait(r"never be shown again", gone=True)
        term.wait(r"e2e created")
        term.keys("q")
        term.wait(r"\[program exited\]")
    finally:
        term.stop()

    created = [k for k in service.list_keys().keys if k.name == "e2e created"]
    assert len(created) == 1 and created[0].owner == current_login()
    assert created[0].id in secret
    verify = subprocess.run(
        [str(KEYTUI), "--db", str(path), "verify"],
        input=secret + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert secret not in verify.stdout + verify.stderr
    wrong = subprocess.run(
        [str(KEYTUI), "--db", str(path), "verify"],
        input=altered(secret),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert wrong.returncode != 0


BURST_ROUNDS = 3  # the misordering was a race: each burst is sent over several rounds


def keys_of(service: KeyService) -> dict[str, str]:
    """Name -> description of every key."""
    return {key.name: key.description for key in service.list_keys().keys}


def close_reveal(term: Terminal) -> None:
    """esc, and esc again to close without copying (each alone: see below)."""
    term.press("Escape", then=r"esc again")
    term.keys("Escape")
    term.wait(r"never be shown again", gone=True)


def test_bursts_of_keys_keep_their_order_in_a_real_terminal(tmux_available, seeded):
    """Keys sent in one send-keys call reach keytui in one read, as SSH delivers them: the tab
    in the middle moves the focus before the letters after it are typed, and keys typed while
    the app starts (its first window is painted before the service opens) run as commands."""
    path, service, ids = seeded
    for round_ in range(BURST_ROUNDS):
        term = Terminal([str(KEYTUI), "--db", str(path)])
        try:
            term.wait(r"search gateway", timeout=15)
            # In the open form: a name, then tab and the description in one burst.
            term.keys("n")
            term.wait(r"New API key")
            term.keys(*f"alpha{round_}", "Tab", *f"beta{round_}", "C-s")
            term.wait(r"never be shown again")
            close_reveal(term)

            # Rename: e, tab to the description and type there, ctrl+s, all in one burst,
            term.keys("/", *"mailer", "Enter")
            term.wait(r"search gateway", gone=True)
            # and q, which waits for the save and quits from the main screen
            term.keys("e", "Tab", "C-u", *f"note{round_}", "C-s", "q")
            term.wait(r"\[program exited\]")
        finally:
            term.stop()
        names = keys_of(service)
        assert names.get(f"alpha{round_}") == f"beta{round_}", names
        assert names["mailer batch"] == f"note{round_}", names


def test_keys_typed_at_start_are_commands_not_search_text(tmux_available, seeded):
    """Keys typed as keytui starts (before its first window, and while the service opens
    behind it) run as the commands they are once it can run them, in order."""
    path, service, _ids = seeded
    for round_ in range(BURST_ROUNDS):
        term = Terminal([str(KEYTUI), "--db", str(path)])
        try:
            time.sleep(0.2)
            term.keys("/", *f"bill{round_}")  # a search for "bill0", not "/bill0"
            # (the terminal echoes what is typed before keytui takes it over: read the app's box)
            term.wait(rf"(?m)^ +\S*bill{round_} +(1 )?All", timeout=15)
            screen = term.wait(r"No keys match")
            assert re.search(rf"(?m)^ +bill{round_} +(1 )?All", screen), screen
            # esc alone: an escape and a letter in one read are alt+letter
            term.press("Escape", then=r"search gateway")
            term.keys("q")
            term.wait(r"\[program exited\]", timeout=15)
        finally:
            term.stop()

        term = Terminal([str(KEYTUI), "--db", str(path)])
        try:
            time.sleep(0.2)
            # n opens the form, the rest fills it in (ctrl+s waits: typed before keytui has
            # the terminal, it would be the tty's XOFF)
            term.keys("n", *f"early{round_}", "Tab", *f"start{round_}")
            term.wait(r"New API key", timeout=15)
            term.keys("C-s")
            term.wait(r"never be shown again")
            close_reveal(term)
            term.keys("q")
            term.wait(r"\[program exited\]")
        finally:
            term.stop()
        names = keys_of(service)
        assert names.get(f"early{round_}") == f"start{round_}", names
        assert not any(name.startswith("n") for name in names), names


def test_at_80x24_in_bursts_lists_stay_inside_dialogs_and_60x20_says_too_small(
    tmux_available, seeded
):
    """The smallest terminal keytui works in, driven in bursts: the new-key form's expiry
    list opens inside the dialog's border, the events filters take a burst in order, settings
    ask before keys go off; shrunk to 60x20 it says the terminal is too small, and comes back
    (with $COLUMNS and $LINES set it never noticed a resize)."""
    path, service, ids = seeded
    # $COLUMNS and $LINES exported, as some shells leave them: the terminal's size still counts
    command = ["env", "COLUMNS=80", "LINES=24", str(KEYTUI), "--db", str(path)]
    term = Terminal(command, size=(80, 24))
    try:
        term.wait(r"search gateway", timeout=30)
        term.press("n", then=r"New API key")
        term.keys("Tab", "Tab", "Tab", "Tab", "Enter")  # to the expiry, and open its list
        screen = term.wait(r"on a date…")
        lines = screen.splitlines()
        foot = max(i for i, line in enumerate(lines) if "▄▄▄▄" in line)  # the border's foot
        listed = next(i for i, line in enumerate(lines) if "on a date…" in line)
        assert listed < foot, screen
        assert re.search(r"█ on a date…", lines[listed]), screen  # inside the left border
        term.keys("Escape")
        term.wait(r"on a date…", gone=True)
        term.keys("Escape")  # nothing typed: closes at once
        term.wait(r"New API key", gone=True)

        mailer = ids["mailer batch"]
        term.keys("E", "/", *"create", "Tab", *mailer[:4])  # one burst, from the main screen
        term.wait(rf"(?m)^ *create +{mailer[:4]} ")
        term.wait(rf"key\.create +{mailer} ")  # the one create event of that key (a prefix
        term.wait(r"(?m)^ *1 event *$")  # of its ID is enough)
        term.keys("Escape")  # leaves the filter box (esc and a letter in one read are alt+)
        term.press("Escape", then=TABLE_FOOTER)

        term.keys("S")
        term.wait(r"API keys enabled")
        term.keys("Space", "C-s")  # in one read: the question, not a silent switch-off
        term.wait(r"every verify will fail|Every verify will fail")
        term.keys("n")
        term.wait(r"Turn API keys off", gone=True)
        assert service.get_settings().keys_enabled is True
        term.keys("Escape")
        term.wait(r"Discard changes")  # the switch was edited: asked once
        term.keys("y")
        term.wait(TABLE_FOOTER)

        term.tmux("resize-window", "-t", "main", "-x", "60", "-y", "20")
        term.wait(r"too small \(60x20\)")
        assert "expi" not in term.screen()
        term.tmux("resize-window", "-t", "main", "-x", "80", "-y", "24")
        term.wait(r"search gateway")
        term.keys("q")
        term.wait(r"\[program exited\]")
    finally:
        term.stop()
    assert service.get_settings().keys_enabled is True
