"""The full-screen face of keytui, a Textual app over KeyService (and nothing else)."""
