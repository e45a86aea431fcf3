"""The sync engine: emails, calendar and tasks, with state kept per account and folder."""
