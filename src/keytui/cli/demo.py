"""``keytui demo``: the app on a database seeded with realistic demo keys."""

from __future__ import annotations

import click

from .common import State, pass_state


@click.command("demo")
@click.option(
    "--keys",
    "count",
    type=click.IntRange(min=0, max=2_000_000),
    default=200,
    show_default=True,
    help="How many demo keys to seed.",
)
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Keep the demo database here (default: a throwaway file).",
)
@click.option("--read-only", is_flag=True)
@pass_state
def demo(state: State, count: int, db_path: str | None, read_only: bool) -> None:
    """Open the app on a database seeded with realistic demo keys (with --db: only a database
    whose only user is you)."""
    read_only = read_only or state.read_only
    import tempfile
    from pathlib import Path

    from ..core.demo import seed_demo
    from ..core.service import KeyService

    with tempfile.TemporaryDirectory(prefix="keytui-demo-") as tmp:
        target = db_path or str(Path(tmp) / "demo.db")
        service = KeyService.open(target, face="tui")
        try:
            if service.counts().total == 0 and count:
                click.echo(f"Seeding {count} demo keys…", err=True)
                seed_demo(service, count)
            service.read_only = read_only  # after seeding: the app changes nothing
            from ..tui.run import run_app_on

            run_app_on(service, read_only=read_only)
        finally:
            service.close()
