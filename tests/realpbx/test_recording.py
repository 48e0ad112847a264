"""recording/{callID}/{extension} on a real Asterisk: a queue call recorded by MixMonitor
(`[incoming] sales-rec`: MixMonitor(${UNIQUEID}.wav) into the spool's monitor/ folder, which
the test makes RECORDINGS_ROOT), judged by the WAV file Asterisk wrote."""

from __future__ import annotations

import struct
import time

import pytest

from tests.realpbx import history, pbx
from tests.realpbx.conftest import WAIT
from tests.realpbx.helpers import call_queue
from tests.realpbx.layouts import NAMES

pytestmark = pytest.mark.layouts("pjsip", "local")

RUN_LIMIT = 20.0  # seconds


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def test_recording_is_processing_while_up_then_streams_the_wav_asterisk_wrote(run, swan, settings):
    started = time.monotonic()
    monitor = run.asterisk.rundir / "var" / "spool" / "asterisk" / "monitor"
    settings.RECORDINGS_ROOT = monitor
    history.forget_history()
    ami = run.ami
    mark = ami.mark()
    number = call_queue(ami, "sales-rec", seconds=5)
    connect = ami.wait_event(
        lambda e: e["event"] == "AgentConnect" and e["calleridnum"] == number,
        since=mark,
        timeout=WAIT,
    )
    ext = next(x for x, name in NAMES.items() if name == connect["membername"])
    call_id, caller = connect["linkedid"], connect["uniqueid"]  # the caller in the queue
    audio = monitor / f"{caller}.wav"
    assert audio.exists(), sorted(p.name for p in monitor.glob("*"))

    # up and recording: processing, and a path for the agent who took part
    def live():
        response = swan.get(f"/recording/{call_id}/{ext}")
        data = response.json().get("result") if response.status_code == 200 else None
        return data if data and data.get("processing") is True else None

    data = pbx.wait_until(live, WAIT, interval=0.1)
    assert data, swan.get(f"/recording/{call_id}/{ext}").content
    assert any(c["linkedid"] == call_id for c in ami.channels()), "the call ended too soon"
    path = data["path"]

    # hung up, CDR written and ingested, the listener saw the hangup: the finished file
    history.cdr_barrier(run, {number})
    history.ingest(run)

    def finished():
        result = swan.get(f"/recording/{call_id}/{ext}").json()["result"]
        return result if result["processing"] is False else None

    data = pbx.wait_until(finished, WAIT, interval=0.1)
    assert data, swan.get(f"/recording/{call_id}/{ext}").json()
    assert data["path"].split("/recording-file/")[0] == path.split("/recording-file/")[0]
    written = audio.read_bytes()
    riff, size, wave = struct.unpack("<4sI4s", written[:12])
    assert (riff, wave) == (b"RIFF", b"WAVE")
    assert size + 8 == len(written) > 44 + 8000  # header + more than half a second of 8 kHz

    for url in (path, data["path"]):  # the link handed out during the call works now too
        response = swan.client.get(url)
        assert response.status_code == 200, _body(response)
        assert response["Content-Type"] == "audio/wav"
        assert _body(response) == written

    response = swan.client.get(path, HTTP_RANGE="bytes=0-11")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 0-11/{len(written)}"
    assert _body(response) == written[:12]
    middle = len(written) // 2
    response = swan.client.get(path, HTTP_RANGE=f"bytes={middle}-")
    assert (response.status_code, response["Content-Range"]) == (
        206,
        f"bytes {middle}-{len(written) - 1}/{len(written)}",
    )
    assert _body(response) == written[middle:]

    elapsed = time.monotonic() - started
    assert elapsed <= RUN_LIMIT, f"the recording test took {elapsed:.1f}s"
