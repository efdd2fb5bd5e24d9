"""The ``keytui`` command line: a thin face over KeyService, one module per command group.

It parses, confirms and prints; every rule is the service's. Exit codes: 0 done, 1 refused by a
rule (one line on stderr says why), 2 bad usage or input. Secrets are never read from argv:
``verify`` reads stdin, and create/replace print the new secret alone on stdout.
"""

from __future__ import annotations

from .app import main

__all__ = ["main"]
