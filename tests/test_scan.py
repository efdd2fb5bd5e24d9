"""From a leaked secret to its key (issue 12): the scanner (core/scan.py), ``keytui scan`` with
its text, JSON and SARIF output and ``--revoke``, ``KeyService.identify`` and ``keytui keys
identify``, a pasted secret where an ID is asked for, and the gitleaks / TruffleHog rule files.

Every CLI test asserts that no secret's random part reaches stdout or stderr."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from keytui.core import keyformat
from keytui.core.db import open_database
from keytui.core.errors import InvalidInput, NotFound, PermissionDenied
from keytui.core.identity import current_login
from keytui.core.scan import Finding, Skip, scan_stream, walk
from keytui.core.service import KeyService

from .conftest import FAST_HASHER, altered

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings

KEYTUI = Path(sys.executable).parent / "keytui"
ROOT = Path(__file__).resolve().parent.parent
ME = current_login()


def random_part(secret: str) -> str:
    return secret[len("kt_") + keyformat.ID_LENGTH + 1 :]


def new_secret() -> str:
    return keyformat.new_secret(keyformat.new_key_id())


# -- the scanner ---------------------------------------------------------------------------------


def scan_bytes(data: bytes, chunk_size: int = 1 << 20) -> list[Finding] | None:
    return scan_stream(io.BytesIO(data).read, "f", chunk_size)


def test_finds_secrets_with_line_and_column_and_only_by_checksum():
    good, other = new_secret(), new_secret()
    near = altered(new_secret())  # the right shape, a wrong checksum
    data = (
        f"first line\n  token = '{good}'\nnear = {near}\n"
        f"héllo {other}, again {good}\n"
        f"x{new_secret()} {new_secret()}_tail kt_short_123\n"  # glued to a word: not a key
    ).encode()
    found = scan_bytes(data)
    assert found == [
        Finding("f", 2, 12, keyformat.key_id_of(good) or ""),
        Finding("f", 4, 7, keyformat.key_id_of(other) or ""),
        Finding("f", 4, 7 + len(other) + 8, keyformat.key_id_of(good) or ""),
    ]


@pytest.mark.parametrize("chunk_size", [64, 97, 128])
def test_a_secret_across_a_chunk_boundary_is_found_once(chunk_size):
    secret = new_secret()
    key_id = keyformat.key_id_of(secret)
    for offset in range(0, 2 * chunk_size):  # every split of the secret, and none
        head = ("ab\n" * (offset // 3)) + "z" * (offset % 3)
        data = f"{head} {secret}\nend {secret}".encode()
        found = scan_bytes(data, chunk_size)
        line = head.count("\n") + 1
        column = len(head) - head.rfind("\n")  # 1-based column of the space, +1
        assert found == [
            Finding("f", line, column + 1, key_id or ""),
            Finding("f", line + 1, 5, key_id or ""),
        ], (offset, found)


def test_a_boundary_glued_to_a_word_across_chunks_is_still_no_key():
    secret = new_secret()
    for chunk_size in (60, 61, 62, 63):
        assert scan_bytes(f"xxxxxxxxx{secret}".encode(), chunk_size) == []
        assert scan_bytes(f"{secret}Z".encode(), chunk_size) == []


def test_binary_data_is_skipped():
    secret = new_secret()
    assert scan_bytes(f"\x00\x01PNG {secret}".encode()) is None
    # A NUL after the first block does not make a text file binary.
    data = b"a" * 9000 + b"\x00 " + secret.encode()
    assert scan_bytes(data, 4096) == [Finding("f", 1, 9003, keyformat.key_id_of(secret) or "")]


def test_walk_skips_git_links_out_of_the_tree_and_special_files(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / ".git").mkdir()
    (tree / ".git" / "config").write_text("x")
    (tree / "sub" / "a.txt").write_text("a")
    (tree / "b.txt").write_text("b")
    outside = tmp_path / "outside.txt"
    outside.write_text("o")
    (tree / "out").symlink_to(outside)
    (tree / "outdir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(tree / "fifo")
    items = list(walk([str(tree)]))
    files = [shown for shown, _ in (i for i in items if not isinstance(i, Skip))]
    assert files == [str(tree / "b.txt"), str(tree / "sub" / "a.txt")]
    skipped = {Path(s.path).name: s.reason for s in items if isinstance(s, Skip)}
    assert skipped["out"].startswith("symbolic link")
    assert skipped["fifo"] == "not a regular file"
    # Followed on request, each file once even when reached twice (outdir loops back).
    followed = [
        s
        for s, _ in (i for i in walk([str(tree)], follow_symlinks=True) if not isinstance(i, Skip))
    ]
    assert str(tree / "out") in followed
    assert len({Path(p).resolve() for p in followed}) == len(followed)
    # A link named on the command line is followed.
    assert [i for i in walk([str(tree / "out")]) if not isinstance(i, Skip)]


# -- the service ---------------------------------------------------------------------------------


def test_identify_names_the_key_without_counting_a_use(make_service):
    alice = make_service("alice")
    issued = alice.create_key("deploy", expires="never")
    alice.add_user("vera", "viewer")
    vera = make_service("vera")
    before = alice.get_key(issued.key.id)
    key = vera.identify(issued.secret)
    vera.flush_usage()
    assert key.id == issued.key.id and key.owner == "alice" and key.status == "active"
    after = alice.get_key(issued.key.id)
    assert (after.use_count, after.last_used_at) == (before.use_count, before.last_used_at)
    assert [e.action for e in alice.list_events(key_id=key.id)] == ["key.create"]
    # Pasted with whitespace, like verify.
    assert alice.identify(f"  {issued.secret}\n").id == key.id
    with pytest.raises(InvalidInput, match="checksum"):
        alice.identify(altered(issued.secret))
    with pytest.raises(InvalidInput, match="not a keytui secret"):
        alice.identify("kt_nope")
    unknown = new_secret()
    with pytest.raises(NotFound, match="not a key of this database") as caught:
        alice.identify(unknown)
    assert random_part(unknown) not in str(caught.value)
    with pytest.raises(PermissionDenied):
        make_service("mallory").identify(issued.secret)


def test_find_keys_reads_many_ids_at_once(make_service):
    alice = make_service("alice")
    ids = [alice.create_key(f"k{i}", expires="never").key.id for i in range(3)]
    alice.revoke_keys(ids[:1])
    found = alice.find_keys([*ids, "zzzzzzzzzz", "not an id", *[f"{i:010d}" for i in range(600)]])
    assert sorted(found) == sorted(ids)
    assert found[ids[0]].status == "revoked" and found[ids[1]].status == "active"


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k != "KEYTUI_DATABASE_URL"}
    clean["XDG_DATA_HOME"] = str(tmp_path / "data")
    return clean


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "scan.db")


class Keys:
    """Keys in the test database, made through the service (the fast hasher), as the acting
    login of the CLI processes."""

    def __init__(self, path: str) -> None:
        self.service = KeyService(open_database(path), actor=ME, hasher=FAST_HASHER)
        self.service.bootstrap()
        self.secrets: list[str] = []

    def make(self, name: str) -> str:
        secret = self.service.create_key(name, expires="never").secret
        self.secrets.append(secret)
        return secret


@pytest.fixture
def keys(db: str):
    made = Keys(db)
    yield made
    made.service.close()


def cli(env, *args: str, stdin: str | bytes = b"", code: int = 0, secrets=()) -> tuple[str, str]:
    """Run the real console script; check the exit code and that no secret's random part (of
    ``secrets``) is in its output."""
    result = subprocess.run(
        [str(KEYTUI), *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        env=env,
        timeout=60,
    )
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == code, (args, result.returncode, out, err)
    assert "Traceback" not in err
    for secret in secrets:
        assert random_part(secret) not in out + err, (out, err)
    return out, err


def test_scan_files_directories_and_stdin(env, db, keys, tmp_path):
    active, revoked, foreign = keys.make("deploy"), keys.make("old"), new_secret()
    keys.service.revoke_keys([keyformat.key_id_of(revoked) or ""])
    near = altered(keys.make("near"))
    tree = tmp_path / "repo"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "app.py").write_text(f"import os\nKEY = '{active}'\n")
    (tree / "notes.md").write_text(f"old: {revoked}\nnear miss: {near}\nother: {foreign}\n")
    (tree / "blob.bin").write_bytes(b"\x00\x00" + active.encode())
    every = [active, revoked, foreign, near, *keys.secrets]

    out, err = cli(env, "--db", db, "scan", str(tree), code=1, secrets=every)
    lines = out.splitlines()
    aid, rid, fid = (keyformat.key_id_of(s) for s in (active, revoked, foreign))
    assert lines == [
        f"{tree}/notes.md:1:6: kt_{rid}_… key {rid}: revoked ('old', owner {ME})",
        f"{tree}/notes.md:3:8: kt_{fid}_…: not a key of this database",
        f"{tree}/src/app.py:2:8: kt_{aid}_… key {aid}: active ('deploy', owner {ME})",
    ]
    assert "1 binary" in err and "3 secret(s) of 3 key(s) in 3 file(s)" in err

    # Only inactive and unknown keys: exit 0.
    out, _ = cli(env, "--db", db, "scan", str(tree / "notes.md"), secrets=every)
    assert len(out.splitlines()) == 2
    # stdin, alone and beside a file.
    out, _ = cli(env, "--db", db, "scan", "-", stdin=f"x {active}\n", code=1, secrets=every)
    assert out == f"<stdin>:1:3: kt_{aid}_… key {aid}: active ('deploy', owner {ME})\n"
    out, _ = cli(
        env, "--db", db, "scan", "-", str(tree / "src"), stdin=revoked, code=1, secrets=every
    )
    assert [line.split(":")[0] for line in out.splitlines()] == ["<stdin>", f"{tree}/src/app.py"]
    # Nothing found: no database needed, exit 0.
    clean = tmp_path / "clean.txt"
    clean.write_text(f"near {near}\n")
    out, err = cli(env, "--db", str(tmp_path / "none.db"), "scan", str(clean), secrets=every)
    assert out == "" and not (tmp_path / "none.db").exists()


def test_scan_no_db_reports_every_secret(env, tmp_path):
    secret = new_secret()
    target = tmp_path / "a.txt"
    target.write_text(f"{secret}\n")
    out, _ = cli(
        env,
        "--db",
        str(tmp_path / "none.db"),
        "scan",
        "--no-db",
        str(target),
        code=1,
        secrets=[secret],
    )
    assert "(not looked up: --no-db)" in out
    assert not (tmp_path / "none.db").exists()


def test_scan_bad_usage_exits_2(env, db, tmp_path):
    cli(env, "--db", db, "scan", str(tmp_path / "missing"), code=2)
    cli(env, "--db", db, "scan", "--json", "--sarif", str(tmp_path), code=2)
    cli(env, "--db", db, "scan", "--no-db", "--revoke", str(tmp_path), code=2)
    cli(env, "--db", db, "scan", "--yes", str(tmp_path), code=2)
    cli(env, "--db", db, "scan", code=2)


def test_scan_json_and_sarif_shapes(env, db, keys, tmp_path):
    active, revoked, foreign = keys.make("deploy"), keys.make("old"), new_secret()
    keys.service.revoke_keys([keyformat.key_id_of(revoked) or ""])
    (tmp_path / "a.env").write_text(f"A={active}\nB={revoked}\n\n  C={foreign}\n")
    every = [active, revoked, foreign]
    out, _ = cli(env, "--db", db, "scan", "--json", str(tmp_path / "a.env"), code=1, secrets=every)
    report = json.loads(out)
    assert set(report) == {"findings", "files_scanned", "skipped"}
    assert report["files_scanned"] == 1 and report["skipped"] == []
    assert [(f["line"], f["column"], f["status"]) for f in report["findings"]] == [
        (1, 3, "active"),
        (2, 3, "revoked"),
        (4, 5, "not_in_database"),
    ]
    first = report["findings"][0]
    assert first == {
        "path": str(tmp_path / "a.env"),
        "line": 1,
        "column": 3,
        "key_id": keyformat.key_id_of(active),
        "secret": f"kt_{keyformat.key_id_of(active)}_…",
        "status": "active",
        "name": "deploy",
        "owner": ME,
    }

    # SARIF, run from the directory so the path is relative, as in a CI checkout.
    result = subprocess.run(
        [str(KEYTUI), "--db", db, "scan", "--sarif", "a.env"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    for secret in every:
        assert random_part(secret) not in result.stdout + result.stderr
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    (run,) = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "keytui"
    rule_ids = [rule["id"] for rule in rules]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("keytui/active-key", "error"),
        ("keytui/inactive-key", "note"),
        ("keytui/unknown-key", "warning"),
    ]
    for r in results:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
        assert r["message"]["text"]
        (location,) = r["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == "a.env"
    regions = [r["locations"][0]["physicalLocation"]["region"] for r in results]
    assert [(g["startLine"], g["startColumn"]) for g in regions] == [(1, 3), (2, 3), (4, 5)]
    assert regions[0]["endColumn"] == 3 + keyformat.SECRET_LENGTH


def test_scan_revoke_needs_yes_off_a_terminal_and_revokes_with_it(env, db, keys, tmp_path):
    active, other = keys.make("deploy"), keys.make("other")
    target = tmp_path / "leak.txt"
    target.write_text(f"one {active}\ntwo {active}\n")
    key_id = keyformat.key_id_of(active) or ""
    _, err = cli(env, "--db", db, "scan", "--revoke", str(target), code=2, secrets=[active])
    assert "needs --yes" in err
    assert keys.service.get_key(key_id).status == "active"  # refused: nothing changed

    out, err = cli(env, "--db", db, "scan", "--revoke", "--yes", str(target), secrets=[active])
    assert f"Revoked key {key_id} 'deploy' (found in {target}:1, {target}:2)." in out
    assert keys.service.get_key(key_id).status == "revoked"
    assert keys.service.get_key(keyformat.key_id_of(other) or "").status == "active"
    (event,) = keys.service.list_events(key_id=key_id, action="revoke")
    assert event.face == "cli"
    # Nothing active left: --revoke has nothing to do, exit 0.
    cli(env, "--db", db, "scan", "--revoke", "--yes", str(target), secrets=[active])

    # --json: the revoked IDs in the report, statuses after the revoke.
    target.write_text(other)
    out, _ = cli(
        env, "--db", db, "scan", "--revoke", "--yes", "--json", str(target), secrets=[other]
    )
    report = json.loads(out)
    assert report["revoked"] == [keyformat.key_id_of(other)]
    assert report["findings"][0]["status"] == "revoked"


def test_identify_command(env, db, keys):
    secret = keys.make("deploy")
    key_id = keyformat.key_id_of(secret) or ""
    before = keys.service.get_key(key_id)
    out, _ = cli(env, "--db", db, "keys", "identify", stdin=secret + "\n", secrets=[secret])
    assert (
        f"kt_{key_id}_…" in out
        and f"ID:            {key_id}" in out
        and "Status:        active" in out
    )
    out, _ = cli(env, "--db", db, "keys", "identify", "--json", stdin=secret, secrets=[secret])
    shown = json.loads(out)
    assert shown["id"] == key_id and shown["owner"] == ME and shown["secret"] == f"kt_{key_id}_…"
    after = keys.service.get_key(key_id)
    assert (
        (after.use_count, after.last_used_at)
        == (before.use_count, before.last_used_at)
        == (0, None)
    )

    foreign = new_secret()
    _, err = cli(env, "--db", db, "keys", "identify", stdin=foreign, code=1, secrets=[foreign])
    assert (
        err.strip() == f"keytui: kt_{keyformat.key_id_of(foreign)}_… is not a key of this database"
    )
    _, err = cli(
        env,
        "--db",
        db,
        "keys",
        "identify",
        stdin=altered(secret),
        code=2,
        secrets=[secret, altered(secret)],
    )
    assert "checksum" in err
    cli(env, "--db", db, "keys", "identify", stdin="hello", code=2)
    cli(env, "--db", db, "keys", "identify", stdin="", code=2)


def test_a_pasted_secret_stands_for_its_key_id(env, db, keys):
    secret = keys.make("deploy")
    key_id = keyformat.key_id_of(secret) or ""
    out, err = cli(env, "--db", db, "keys", "show", "--json", secret, secrets=[secret])
    assert json.loads(out)["id"] == key_id
    assert f"its key ID is {key_id}" in err
    _, err = cli(
        env, "--db", db, "keys", "show", altered(secret), code=2, secrets=[secret, altered(secret)]
    )
    assert "checksum" in err
    cli(env, "--db", db, "keys", "rename", secret, "renamed", secrets=[secret])
    assert keys.service.get_key(key_id).name == "renamed"
    out, _ = cli(env, "--db", db, "events", "--key", secret, "--json", secrets=[secret])
    assert {e["key_id"] for e in json.loads(out)} == {key_id}
    cli(env, "--db", db, "keys", "revoke", "--yes", secret, secrets=[secret])
    assert keys.service.get_key(key_id).status == "revoked"
    cli(env, "--db", db, "keys", "delete", "--yes", secret, secrets=[secret])
    with pytest.raises(NotFound):
        keys.service.get_key(key_id)


# -- the rule files for other scanners -----------------------------------------------------------


def rule_regexes() -> dict[str, str]:
    gitleaks = tomllib.loads((ROOT / "contrib" / "gitleaks.toml").read_text())
    (rule,) = [r for r in gitleaks["rules"] if r["id"] == "keytui-api-key"]
    assert rule["keywords"] == ["kt_"]
    # No YAML parser among the dependencies: the detector's one regex line, read as YAML's
    # single-quoted scalar ('' is a quote).
    text = (ROOT / "contrib" / "trufflehog.yaml").read_text()
    assert re.search(r"^\s+keywords:\n\s+- kt_$", text, re.M)
    (value,) = re.findall(r"^\s+key: '((?:[^']|'')*)'$", text, re.M)
    return {"gitleaks": rule["regex"], "trufflehog": value.replace("''", "'")}


@pytest.mark.parametrize("tool", ["gitleaks", "trufflehog"])
def test_rule_files_match_a_secret_and_not_a_near_miss(tool):
    pattern = re.compile(rule_regexes()[tool])  # Go's RE2 and Python agree on this subset
    secret = keyformat.new_secret(keyformat.new_key_id())
    assert pattern.search(f"token: '{secret}'").group() == secret
    assert pattern.search(f"{secret}").group() == secret
    key_id, rest = secret[3:13], secret[14:]
    near_misses = [
        secret[:-1],  # one character short
        secret + "A",  # one too many
        f"kt_{key_id.upper()}_{rest}",  # the ID has no capitals
        f"kt_{key_id[:-1]}_{rest}A",  # the ID one short
        f"kt-{key_id}_{rest}",
        f"xkt_{key_id}_{rest}",  # glued to a word
        f"kt_{key_id}_{rest[:-1]}-",
    ]
    for near in near_misses:
        assert not pattern.search(near), near
    # What a regex cannot do: a wrong checksum still matches (keytui scan checks it).
    assert pattern.search(altered(secret))


def test_pre_commit_hook_runs_keytui_scan():
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert re.search(r"^\s+entry: keytui scan$", text, re.M)
    assert re.search(r"^- id: keytui-scan$", text, re.M)
