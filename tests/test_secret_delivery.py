"""Issue 10, "Secrets that must not be lost": create and replace print the new secret inside the
transaction that makes it; a secret that could not be printed (stdout closed, a full disk)
rolls the change back, with one line and exit 1."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import func, select

from keytui.core.errors import NotDelivered
from keytui.core.models import Event, Key

from .conftest import altered, closes_descriptors
from .test_cli import KEYTUI, check_stderr, env, service_on

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings

__all__ = ["env"]  # the CLI tests' fixture


def snapshot(service) -> tuple[object, ...]:
    with service.db.read() as session:
        return (
            int(session.scalar(select(func.count()).select_from(Key)) or 0),
            int(session.scalar(select(func.count()).select_from(Event)) or 0),
            tuple(session.scalars(select(Key.secret_hash).order_by(Key.pk))),
        )


def run_shell(env, script: str, *args: str) -> subprocess.CompletedProcess:
    """``keytui ARGS`` with the redirections in ``script`` ("$@" is the command)."""
    return subprocess.run(
        ["bash", "-c", script, "bash", str(KEYTUI), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    "redirect", [pytest.param('"$@" >&-', marks=closes_descriptors), '"$@" >/dev/full']
)
@pytest.mark.parametrize("as_json", [False, True])
def test_create_whose_secret_cannot_be_printed_does_not_stand(env, tmp_path, redirect, as_json):
    db = str(tmp_path / "cli.db")
    service = service_on(db)
    before = snapshot(service)
    args = ["keys", "create", "--name", "lost", "--db", db] + (["--json"] if as_json else [])
    result = run_shell(env, redirect, *args)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("keytui: the new secret could not be written"), result.stderr
    assert "nothing was changed" in lines[-1]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert len(lines) <= 2  # the description (on stderr) may have gone out before
    assert snapshot(service) == before
    service.close()


@pytest.mark.parametrize(
    "redirect", [pytest.param('"$@" >&-', marks=closes_descriptors), '"$@" >/dev/full']
)
def test_replace_whose_secret_cannot_be_printed_keeps_the_old_secret(env, tmp_path, redirect):
    db = str(tmp_path / "cli.db")
    service = service_on(db)
    issued = service.create_key("precious")
    before = snapshot(service)
    result = run_shell(env, redirect, "keys", "replace", issued.key.id, "--yes", "--db", db)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("keytui: the new secret could not")
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert snapshot(service) == before
    assert service.verify(issued.secret).valid  # the old secret still works
    service.close()


def test_a_printed_secret_is_the_committed_one(env, tmp_path):
    db = str(tmp_path / "cli.db")
    service = service_on(db)
    issued = service.create_key("k")
    result = subprocess.run(
        [str(KEYTUI), "keys", "replace", issued.key.id, "--yes", "--db", db],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    check_stderr(result.stderr, result.returncode, False)
    secret = result.stdout.strip()
    assert service.verify(secret).valid and not service.verify(issued.secret).valid
    assert not service.verify(altered(secret)).valid
    service.close()


def test_deliver_failure_rolls_back_in_the_service(make_service):
    alice = make_service("alice")
    before = snapshot(alice)

    def broken(_issued) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(NotDelivered, match="No space left on device"):
        alice.create_key("x", deliver=broken)
    assert snapshot(alice) == before
    issued = alice.create_key("kept")
    before = snapshot(alice)
    with pytest.raises(NotDelivered):
        alice.replace_key(issued.key.id, deliver=broken)
    assert snapshot(alice) == before
    assert alice.verify(issued.secret).valid
    seen: list[str] = []
    done = alice.create_key("delivered", deliver=lambda i: seen.append(i.key.id))
    assert seen == [done.key.id]
