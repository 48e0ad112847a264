"""The queue_log reader thread: a caller that stops early never waits on it forever."""

from __future__ import annotations

import threading

import pytest

from pbx.history.ingest.files import Block, read_ahead


def _blocks(count: int, exhausted: threading.Event):
    for number in range(count):
        yield Block(text=f"line {number}\n", first_number=number + 1, count=1, offset_after=0)
    exhausted.set()  # the reader asked for more: it is about to queue its end mark


def test_stopping_after_the_first_block_when_the_reader_has_queued_the_rest():
    # The reader has read everything and queues its end mark into a full queue while the caller
    # stops (SIGTERM after a batch). It used to block on that put, and the caller's join with it:
    # the ingest follower then never exited.
    exhausted = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        for block, lines in read_ahead(_blocks(2, exhausted), depth=1):
            seen.append(block.first_number)
            assert lines == [f"line {block.first_number - 1}"]
            assert exhausted.wait(10)
            break

    caller = threading.Thread(target=consume, daemon=True)
    caller.start()
    caller.join(10)
    assert not caller.is_alive(), "the caller hung joining the reader"
    assert seen == [1]


def test_every_block_in_order_then_the_end():
    exhausted = threading.Event()
    got = [block.first_number for block, _lines in read_ahead(_blocks(5, exhausted), depth=2)]
    assert got == [1, 2, 3, 4, 5]


def test_an_error_in_the_reader_reaches_the_caller():
    def failing():
        yield Block(text="a\n", first_number=1, count=1, offset_after=2)
        raise OSError("disk gone")

    got = []

    def consume() -> None:
        for block, _lines in read_ahead(failing()):
            got.append(block.first_number)

    with pytest.raises(OSError, match="disk gone"):
        consume()
    assert got == [1]
