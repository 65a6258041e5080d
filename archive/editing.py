"""Editing a recorded session's record: markers, publication and redaction (SQL)."""

from __future__ import annotations

from archive.db import Store


class EditingStore(Store):
    """Marker corrections, publication and redactions (mixed into ArchiveIndex)."""
