"""Issue 10, "Smaller things seen": allowed hosts that would mean more (or nothing) than they
say, the file-permission warning, a database file deleted while open, a partial bulk revoke."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from keytui.core import validate
from keytui.core.changes import Change, wait_until
from keytui.core.db import access_warning
from keytui.core.errors import DatabaseError, InvalidInput

from .test_cli import invoke, service_on


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::FFFF:192.168.1.7", "192.168.1.7"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("*.example.com", "*.example.com"),
        ("*.co.uk", "*.co.uk"),
    ],
)
def test_hosts_are_stored_as_they_will_match(given, stored):
    assert validate.host(given) == stored


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("10.0.0.1/0", "would mean 0.0.0.0/0"),
        ("10.0.0.1/8", "would mean 10.0.0.0/8"),
        ("2001:db8::1/32", "would mean 2001:db8::/32"),
        ("*.com", "at least two labels"),
        ("*.localhost", "at least two labels"),
    ],
)
def test_hosts_that_would_mean_more_than_they_say_are_refused(given, says):
    with pytest.raises(InvalidInput, match=says):
        validate.host(given)


def test_keys_show_lists_the_allowed_hosts(tmp_path):
    db = str(tmp_path / "cli.db")
    service = service_on(db)
    key = service.create_key("k", allowed_hosts=["10.0.0.0/8", "::ffff:10.1.2.3"]).key.id
    service.close()
    shown = invoke("keys", "show", key, "--db", db).stdout
    assert "Allowed hosts: 10.0.0.0/8, 10.1.2.3" in shown


@pytest.mark.parametrize(
    ("mode", "warned"),
    [(0o600, False), (0o660, False), (0o640, False), (0o644, True), (0o602, True)],
)
def test_the_permission_warning_is_about_the_world_not_the_group(tmp_path, mode, warned):
    path = tmp_path / "k.db"
    path.touch()
    os.chmod(path, mode)
    warning = access_warning(path)
    assert bool(warning) is warned
    if warning:
        assert "chmod o-rwx" in warning and "chmod 600" not in warning


def test_a_deleted_database_file_is_noticed_and_refuses_changes(make_sqlite_service):
    service = make_sqlite_service("alice")
    key = service.create_key("k").key.id
    heard: list[Change] = []
    watcher = service.watch(heard.append)
    path = service.db.sqlite_path
    assert path is not None and not service.db.file_gone()
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    assert service.db.file_gone()
    for change in (
        lambda: service.create_key("lost"),
        lambda: service.revoke_key(key),
        lambda: service.add_user("bob", "viewer"),
    ):
        with pytest.raises(DatabaseError, match="deleted or replaced"):
            change()
    assert wait_until(lambda: any(c.file_gone for c in heard), timeout=30)
    assert sum(c.file_gone for c in heard) == 1  # said once
    watcher.stop()


def test_a_service_refuses_to_write_once_its_file_was_deleted(tmp_path):
    db = tmp_path / "cli.db"
    service = service_on(str(db))
    db.unlink()
    with pytest.raises(DatabaseError, match="deleted or replaced"):
        service.create_key("x")
    service.close()


def test_a_partial_bulk_revoke_is_a_success_naming_the_skipped(tmp_path):
    db = str(tmp_path / "cli.db")
    service = service_on(db)
    active = service.create_key("a").key.id
    service.close()
    result = invoke("keys", "revoke", active, "zzzzzzzzzz", "--yes", "--db", db, code=0)
    assert f"Revoked key {active}" in result.stdout
    assert result.stderr.strip() == "keytui: skipped 1: zzzzzzzzzz (not found)"
    again = invoke("keys", "revoke", active, "--yes", "--db", db, code=1, answer=True)
    assert "already revoked" in again.stderr
