"""The UI-free heart of keytui: key format, hashing, models, database and the service.

Nothing under this package imports ``textual`` or ``rich``; a test enforces it.
"""
