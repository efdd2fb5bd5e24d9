"""``python -m keytui.cli`` (the benchmark runs keytui this way)."""

from . import main

main()
