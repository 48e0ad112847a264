"""The last line before a moment: a restart's last sign of life, whatever order lines came in.

Lines are stored as ingest stores them, so each block of line numbers keeps its times
(QueueLogBlockTimes) as the look-up expects.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from datetime import UTC, datetime, timedelta

import pytest

from pbx.history.ingest.lines import last_lines_before
from pbx.history.ingest.queue_log import parse_line
from pbx.history.ingest.repeats import RepeatFilter
from pbx.history.ingest.store import store_queue_log
from pbx.models import DEFAULT_PBX, LINES_PER_BLOCK, QueueLogBlockTimes, QueueLogFile

pytestmark = pytest.mark.django_db

T1 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _file(pbx: str = DEFAULT_PBX) -> QueueLogFile:
    return QueueLogFile.objects.create(pbx=pbx, fingerprint=f"{pbx}-file", fingerprint_length=64)


def _store(
    file: QueueLogFile, times: list[datetime], first: int = 1, *, dump: bool = False
) -> None:
    """Stores lines at these times as ingest does, numbered from `first`: epoch lines, or with
    `dump` psql dump rows (a datetime stamp: parsed in Python on every database)."""
    if dump:
        lines = [
            f" {t.isoformat(sep=' ')} | d{first + i} | q | | ENTERQUEUE | | 600 | 1"
            for i, t in enumerate(times)
        ]
    else:
        lines = [
            f"{int(t.timestamp())}|c{first + i}|q||ENTERQUEUE||600|1" for i, t in enumerate(times)
        ]
    stored = store_queue_log(
        file,
        first,
        lines,
        repeats=RepeatFilter(),
        parse=lambda _index, text: parse_line(text, local_tz=UTC),
    )
    assert stored.added == len(times)


def test_each_moment_finds_the_latest_earlier_line_however_far_back():
    t2 = T1 + timedelta(days=61)
    t3 = t2 + timedelta(days=4)
    t4 = t3 + timedelta(hours=3)
    m4 = t4 + timedelta(seconds=20)
    # Stored latest first: the order read is not the order written.
    _store(_file(), [m4, t4, t4 - timedelta(seconds=10), t3, t2, T1])
    _store(_file("other"), [m4 - timedelta(seconds=1)])
    moments = {
        T1 - timedelta(seconds=1): None,  # before every line
        T1: None,  # a line at the moment itself is not before it
        T1 + timedelta(days=60): T1,  # 60 days of silence
        t2 + timedelta(days=3): t2,
        t3 + timedelta(hours=2): t3,
        m4: t4,  # the latest before it, not another PBX's later line
    }
    assert last_lines_before(list(moments), pbx=DEFAULT_PBX) == moments


def test_a_pbx_without_lines_has_no_last_line():
    _store(_file("other"), [T1])
    assert last_lines_before([T1 + timedelta(hours=1)], pbx=DEFAULT_PBX) == {
        T1 + timedelta(hours=1): None
    }
    assert last_lines_before([], pbx=DEFAULT_PBX) == {}


def test_thousands_of_lines_out_of_order_across_blocks_give_what_a_sorted_list_gives():
    rng = random.Random(12)
    times = sorted(T1 + timedelta(seconds=rng.randrange(0, 40 * 86_400)) for _ in range(6_000))
    # Mostly in order, as a PBX writes them, with late days read after later ones.
    shuffled = times[3_000:4_500] + times[:3_000] + times[4_500:]
    file = _file()
    moments = [T1 + timedelta(seconds=rng.randrange(-3_600, 41 * 86_400)) for _ in range(300)]

    def expected(lines):
        ordered = sorted(lines)
        return {m: ordered[i - 1] if (i := bisect_left(ordered, m)) else None for m in moments}

    _store(file, shuffled[:4_000])
    assert last_lines_before(moments, pbx=DEFAULT_PBX) == expected(shuffled[:4_000])
    # Lines stored later, some earlier than lines stored before them.
    _store(file, shuffled[4_000:], first=4_001)
    assert last_lines_before(moments, pbx=DEFAULT_PBX) == expected(shuffled)


def test_moments_inside_and_between_blocks_far_apart_in_the_file():
    rng = random.Random(7)
    file = _file()
    stored: list[datetime] = []
    # Blocks of lines in shuffled days, some full and some nearly empty, numbered far apart:
    # a moment falls inside some blocks' times and between others'.
    for block, day in enumerate(rng.sample(range(30), 12)):
        count = rng.choice([1, 3, 400])
        times = [T1 + timedelta(days=day, seconds=rng.randrange(0, 80_000)) for _ in range(count)]
        _store(file, times, first=block * 3 * LINES_PER_BLOCK + rng.randrange(1, LINES_PER_BLOCK))
        stored.extend(times)
    ordered = sorted(stored)
    moments = [*ordered[::37], *(t + timedelta(seconds=1) for t in ordered[::41])]
    moments += [T1 - timedelta(days=1), T1 + timedelta(days=40)]
    expected = {m: ordered[i - 1] if (i := bisect_left(ordered, m)) else None for m in moments}

    assert last_lines_before(moments, pbx=DEFAULT_PBX) == expected
    assert QueueLogBlockTimes.objects.filter(file=file).count() == 12


def test_a_block_written_in_small_batches_is_one_row_with_all_their_times():
    file = _file()
    times = [T1 + timedelta(seconds=(number * 7919) % 500) for number in range(1, 40)]
    for number, moment in enumerate(times, start=1):  # a follower storing a line a poll
        _store(file, [moment], first=number)
    _store(file, [T1 + timedelta(seconds=250)], first=LINES_PER_BLOCK)  # the block's last line

    (row,) = QueueLogBlockTimes.objects.filter(file=file)
    assert (row.block, row.earliest, row.latest) == (0, min(times), max(times))
    _store(file, [T1 + timedelta(days=1)], first=LINES_PER_BLOCK + 1)
    blocks = QueueLogBlockTimes.objects.filter(file=file).order_by("block")
    assert list(blocks.values_list("block", "earliest")) == [
        (0, min(times)),
        (1, T1 + timedelta(days=1)),
    ]


def test_lines_read_in_python_widen_their_blocks_as_plain_lines_do():
    file = _file()
    _store(file, [T1 + timedelta(hours=2), T1 + timedelta(hours=1)], dump=True)
    # A second batch in the same block, earlier and later than the first.
    _store(file, [T1 + timedelta(hours=3), T1], first=3, dump=True)
    _store(file, [T1 + timedelta(hours=1, minutes=30)], first=5, dump=True)

    row = QueueLogBlockTimes.objects.get(file=file)
    assert (row.earliest, row.latest) == (T1, T1 + timedelta(hours=3))
    moments = [T1 + timedelta(hours=1, minutes=45), T1 + timedelta(hours=4)]
    assert last_lines_before(moments, pbx=DEFAULT_PBX) == {
        moments[0]: T1 + timedelta(hours=1, minutes=30),
        moments[1]: T1 + timedelta(hours=3),
    }
