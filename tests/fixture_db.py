"""The fixed database the snapshot tests and scripts/screenshots.py share. It lives with the
tests (not in ``keytui.core.demo``) so that it does not ship in the wheel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from keytui.core.clock import FrozenClock
from keytui.core.demo import seed_demo
from keytui.core.hashing import make_hasher
from keytui.core.models import Key, KeyUsage
from keytui.core.service import KeyService
from keytui.core.usage import OUTCOMES, hour_of

FIXTURE_NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def fixture_service(path: str, *, keys: int = 60, actor: str = "alice") -> KeyService:
    """The fixed database the snapshot tests and the screenshot script share: a frozen clock,
    seeded keys, and a few keys chosen to show the edge cases (markup in a name, an escape
    sequence, a key about to expire). Same inputs, same pixels."""
    service = KeyService.open(
        path,
        actor=actor,
        face="tui",
        clock=FrozenClock(FIXTURE_NOW),
        hasher=make_hasher(time_cost=1, memory_cost=1024),
    )
    if keys:
        seed_demo(service, keys)
        now = FIXTURE_NOW
        special = dict(
            secret_hash="$argon2id$fixture",
            created_at=now - timedelta(hours=3),
            updated_at=now - timedelta(hours=3),
            use_count=0,
            revoked_at=None,
            revoked_by=None,
            last_used_at=None,
        )
        with service.db.write() as session:  # fixed IDs, so pictures never change
            session.execute(
                insert(Key),
                [
                    {
                        **special,
                        "key_id": "markup0001",
                        "name": "[b]x looks like markup",
                        "description": "escape \x1b[2J kept harmless",
                        "owner": "bob",
                        "role": "read-write",
                        "expires_at": now + timedelta(days=5),
                        "allowed_hosts": "[]",
                    },
                    {
                        **special,
                        "key_id": "deploy0001",
                        "name": "deploy bot (prod)",
                        "description": "",
                        "owner": actor,
                        "role": "deploy",
                        "expires_at": now + timedelta(days=90),
                        "allowed_hosts": '["10.0.0.0/8", "ci.example.com"]',
                    },
                ],
            )
        # A little history for the details and events screens (the new secret is dropped).
        service.rename_key("deploy0001", description="CI deploys to production")
        service.replace_key("deploy0001")
        service.revoke_keys([service.list_keys().keys[3].id])
        add_usage(service)
    return service


def add_usage(service: KeyService) -> None:
    """30 days of hourly uses for deploy0001 (working hours, ~40 an hour) ending in heavy use
    last hour, and a burst of wrong secrets for markup0001: what the details, the table's
    "Uses 24h" column, its flags and the header's warning show. Fixed numbers, fixed pixels."""
    hour = hour_of(FIXTURE_NOW)
    zero = dict.fromkeys(OUTCOMES, 0)
    rows = []
    for at in range(hour - 31 * 24, hour - 1):
        if 8 <= at % 24 <= 18:
            wrong = 2 if at % 97 == 0 else 0
            rows.append(
                {
                    **zero,
                    "key_id": "deploy0001",
                    "hour": at,
                    "valid": 30 + at * 7 % 23,
                    "wrong_secret": wrong,
                }
            )
    last = FIXTURE_NOW - timedelta(minutes=1)
    rows.append(
        {
            **zero,
            "key_id": "deploy0001",
            "hour": hour - 1,
            "valid": 950,
            "host_denied": 3,
            "used_at": last,
            "used_host": "10.20.0.7",
            "refused_at": last,
            "refused_host": "192.0.2.44",
        }
    )
    rows.append(
        {
            **zero,
            "key_id": "markup0001",
            "hour": hour - 1,
            "wrong_secret": 25,
            "throttled": 4,
            "refused_at": last,
            "refused_host": "203.0.113.9",
        }
    )
    uses = sum(row["valid"] for row in rows)
    with service.db.write() as session:
        session.execute(
            insert(KeyUsage),
            [
                {
                    "used_at": None,
                    "used_host": None,
                    "refused_at": None,
                    "refused_host": None,
                    **row,
                }
                for row in rows
            ],
        )
        session.execute(
            update(Key).where(Key.key_id == "deploy0001").values(use_count=uses, last_used_at=last)
        )
