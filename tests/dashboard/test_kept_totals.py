"""The listener's queue updates keep today's figures until the queue history changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from pbx.history.kept_totals import KeptEntryTotals
from pbx.history.selectors import entry_totals
from pbx.live.version import KEEP_CHANGES, history_changed_since, live_changed
from pbx.models import LiveVersion
from pbx.models.history import QueueEntry


def _entry(queue, n: int, outcome: str = "answered", *, when=None) -> QueueEntry:
    return QueueEntry.objects.create(
        pbx=queue.pbx,
        callid=f"call-{n}",
        queue_name=queue.name,
        queue=queue,
        company=queue.company,
        entered_at=when or timezone.now(),
        outcome=outcome,
        wait_seconds=12,
        talk_seconds=30,
    )


@pytest.fixture
def soporte(company, make_queue):
    queue = make_queue(company, "q-soporte")
    live_changed(users=[1])  # a version row, as any running install has
    return queue


def _figures(kept, queue, now=None):
    return kept.totals({"q": queue}, now or timezone.now())["q"]


def test_figures_are_kept_across_changes_that_name_no_history(soporte, django_assert_num_queries):
    kept = KeptEntryTotals()
    _entry(soporte, 1)
    first = _figures(kept, soporte)
    assert first.completed == 1
    _entry(soporte, 2)  # no live change: as if not derived yet
    live_changed(users=[1], queues=["q-soporte"])  # what the listener's batches announce
    with django_assert_num_queries(1):  # whether the history changed, no aggregate
        again = _figures(kept, soporte)
    assert again == first
    again.waiting = 5  # the wallboard sets its callers on the figures it was given
    assert _figures(kept, soporte).waiting == 0


def test_a_history_change_reads_the_figures_again(soporte):
    kept = KeptEntryTotals()
    _entry(soporte, 1)
    assert _figures(kept, soporte).completed == 1
    _entry(soporte, 2, "abandoned")
    live_changed(history=["q-soporte"])  # what ingest announces with the entries it derived
    live_changed(users=[1])  # and a listener's batch after it
    figures = _figures(kept, soporte)
    assert (figures.completed, figures.abandoned) == (1, 1)
    assert figures == entry_totals({"q": soporte}, timezone.now())["q"]


def test_a_directory_change_reads_the_figures_again(soporte):
    kept = KeptEntryTotals()
    _figures(kept, soporte)
    _entry(soporte, 1)
    live_changed(everything=True)
    assert _figures(kept, soporte).completed == 1


def test_a_new_day_and_another_service_level_are_other_figures(soporte):
    kept = KeptEntryTotals()
    now = timezone.now()
    _entry(soporte, 1, when=now)
    soporte.service_level_seconds = 10
    assert _figures(kept, soporte, now).ring_ok == 0  # waited 12 s
    soporte.service_level_seconds = 20
    assert _figures(kept, soporte, now).ring_ok == 1
    assert _figures(kept, soporte, now + timedelta(days=1)).completed == 0


def test_without_a_version_row_the_figures_are_always_read(company, make_queue):
    queue = make_queue(company, "q-soporte")
    LiveVersion.objects.all().delete()  # a new or flushed database
    kept = KeptEntryTotals()
    assert _figures(kept, queue).completed == 0
    _entry(queue, 1)
    assert _figures(kept, queue).completed == 1


def test_history_changed_since_tells_when_it_cannot_be_sure(soporte):
    version, _changed = history_changed_since(None)
    assert history_changed_since(None) == (version, True)  # nothing read before
    assert history_changed_since(version) == (version, False)
    live_changed(devices=["PJSIP/200"])
    assert history_changed_since(version) == (version + 1, False)
    assert history_changed_since(version + 5)[1] is True  # ahead of the database: rewound
    LiveVersion.objects.filter(pk=1).update(version=version + KEEP_CHANGES + 1)
    assert history_changed_since(version)[1] is True  # changes since then may be pruned
    latest = version + KEEP_CHANGES + 1
    live_changed(history=["q-soporte"])
    assert history_changed_since(latest) == (latest + 1, True)
    assert history_changed_since(latest + 1) == (latest + 1, False)
    live_changed(everything=True)
    assert history_changed_since(latest + 1) == (latest + 2, True)
