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
