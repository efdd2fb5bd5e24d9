"""Who is acting: the OS account of the process's real uid, never $USER or $LOGNAME."""

from __future__ import annotations

import os
import pwd


def current_login() -> str:
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"
