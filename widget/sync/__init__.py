"""The sync engine: emails (and later calendar and tasks), with state kept per account and folder."""
