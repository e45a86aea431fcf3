"""The names people see for the folders a sync covers (kept apart from the engine, so pages need no Exchange code)."""

FOLDER_LABELS = {"inbox": "Inbox", "sentitems": "Sent Items", "calendar": "Calendar", "tasks": "Tasks"}


def folder_label(folder: str) -> str:
    """A folder's name for people: the distinguished folders by their Outlook names, others as they are."""
    return FOLDER_LABELS.get(folder, folder)
