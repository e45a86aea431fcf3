"""The Settings menu: one registry of the administrator's sections, shown the same on every Settings page (the
sync history and the CRM directory included)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """One entry of the Settings menu."""

    endpoint: str  # where the entry leads
    label: str
    covers: str  # the endpoints (a prefix) during which the entry is the current one

    def is_current(self, endpoint: str | None) -> bool:
        """Whether the page being shown belongs to this section."""
        return bool(endpoint) and endpoint.startswith(self.covers)


SETTINGS_SECTIONS = (
    Section("admin.server", "Exchange server", "admin.server"),
    Section("admin.impersonation", "Impersonation", "admin.impersonation"),
    Section("admin.sync", "Sync settings", "admin.sync"),
    Section("admin.users", "Users", "admin.users"),
    Section("crm_admin.records", "CRM directory", "crm_admin."),
    Section("history.index", "Sync history", "history."),
    Section("admin.embedding", "Embedding", "admin.embedding"),
)
