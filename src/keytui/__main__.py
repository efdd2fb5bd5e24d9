"""``python -m keytui``: the same command as ``keytui``."""

from keytui.cli import main

if __name__ == "__main__":
    main()
