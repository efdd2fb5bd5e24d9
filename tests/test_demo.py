"""Demo seeding: fast, and honest about what it added."""

from __future__ import annotations

from sqlalchemy import func, select

from keytui.core.demo import seed_demo
from keytui.core.models import Key


def test_seeding_twice_adds_twice_and_the_events_say_how_many(admin):
    seed_demo(admin, 400)
    seed_demo(admin, 400)  # the same random seed: its IDs are drawn again, never reused
    seed_demo(admin, 0)
    with admin.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Key)) == 800
        assert session.scalar(select(func.count(func.distinct(Key.key_id)))) == 800
    seeded = [event.details["keys"] for event in admin.list_events(action="demo.seed")]
    assert seeded == [0, 400, 400]
    assert admin.verify_event_chain().ok
    assert admin.counts().total == 800


def test_demo_data_follows_the_rules_the_service_enforces(admin):
    """No owner over the per-user limit (with room to create one more), no key used after it
    expired or was revoked or after now, a key.create event for every key (and a key.revoke
    for every revoked one), and the chain holds."""
    from sqlalchemy import or_

    from keytui.core.models import Event
    from keytui.core.search import status_filter

    seed_demo(admin, 3000)  # more active keys than 7 owners may hold under a limit of 100
    now = admin.now()
    limit = admin.get_settings().max_keys_per_user
    with admin.db.read() as session:
        active = session.execute(
            select(Key.owner, func.count()).where(status_filter("active", now)).group_by(Key.owner)
        ).all()
        assert max(held for _, held in active) < limit
        owners = {owner for (owner,) in session.execute(select(Key.owner).distinct())}
        late = session.scalar(
            select(func.count())
            .select_from(Key)
            .where(
                Key.last_used_at.is_not(None),
                or_(
                    Key.last_used_at > now,
                    Key.last_used_at < Key.created_at,
                    Key.last_used_at > Key.expires_at,
                    Key.last_used_at > Key.revoked_at,
                ),
            )
        )
        assert late == 0
        keys = set(session.scalars(select(Key.key_id)))
        created = list(session.scalars(select(Event.key_id).where(Event.action == "key.create")))
        revoked = set(session.scalars(select(Key.key_id).where(Key.revoked_at.is_not(None))))
        revokes = set(session.scalars(select(Event.key_id).where(Event.action == "key.revoke")))
    assert sorted(created) == sorted(keys)
    assert revokes == revoked and revoked
    assert owners <= {user.login for user in admin.list_users()}  # every owner is a user
    assert admin.verify_event_chain().ok
    # The demo's own user can still create a key.
    admin.create_key("one more", owner=admin.actor)
