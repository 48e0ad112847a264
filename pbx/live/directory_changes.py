"""Directory edits made anywhere (admin, shell, fixtures) renumber the web workers' read caches.

Like django.contrib.sites clearing its SITE_CACHE: a save or delete of a model the read caches
hold (pbx/api/read_cache.py) calls live_changed(everything=True) in the same transaction. Bulk
writes send no model signals: `load_directory` sends directory_loaded instead. API keys (kept apart, for a
few seconds: pbx/directory/api_keys.py), numbers and agendas are not in the read caches.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from pbx.directory.signals import directory_loaded
from pbx.live.version import live_changed
from pbx.models import Company, Department, PbxUser, Queue, QueueMember

# A terminal's registration is live state, announced by terminal-register itself.
_NOT_DIRECTORY = {"registered", "registered_at"}


def directory_changed(sender, instance, update_fields=None, **kwargs) -> None:
    if update_fields is not None and set(update_fields) <= _NOT_DIRECTORY:
        return
    live_changed(everything=True)


def directory_reloaded(sender, **kwargs) -> None:
    live_changed(everything=True)


def connect() -> None:
    directory_loaded.connect(directory_reloaded, dispatch_uid="swan-live-directory-loaded")
    from terminals.models import Terminal

    for model in (Company, Department, PbxUser, Queue, QueueMember, Terminal):
        uid = f"swan-live-{model._meta.label_lower}"
        post_save.connect(directory_changed, sender=model, dispatch_uid=uid + "-save")
        post_delete.connect(directory_changed, sender=model, dispatch_uid=uid + "-delete")
