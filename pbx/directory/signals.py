"""What the directory announces to the stages that keep copies of it (the read caches)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction of a bulk directory write (`load_directory`), which sends no model
# signals: receivers that keep copies of the directory renumber them in the same transaction.
directory_loaded = Signal()
