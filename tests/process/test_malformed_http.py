"""Malformed HTTP against a real daphne: what Django can see answers the envelope.

Twisted parsed multipart bodies itself and answered a bad one with a bare 400 before Django saw
the request (swanproject/serving.py turns that off). What never reaches Django (a broken request
line, a header name with a space) is daphne's own answer, documented in docs/api.md.
"""

from __future__ import annotations

import json
import socket

import pytest

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def raw(address: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends bytes as they are; returns status, headers (lower-case names) and body."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value
        for name, value in (line.split(": ", 1) for line in header_lines if ": " in line)
    }
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(status_line.split()[1]), headers, body


def dechunk(body: bytes) -> bytes:
    data = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            return data
        data, body = data + body[:length], body[length + 2 :]
    return data


def post(path: str, content_type: str | None, body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


MULTIPART = [
    ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--"),
    ("multipart/form-data; boundary=", b"--\r\n\r\n"),
    ("multipart/form-data; boundary=abc", b"garbage"),
    ("multipart/form-data; boundary=abc", b""),
    ("multipart/form-data; boundary=\xff\xfe", b"--\xff\xfe--"),
]


def assert_envelope(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict:
    assert status == expected, (status, body[:200])
    assert headers["content-type"].startswith("application/json"), headers
    data = json.loads(body)
    assert set(data) == {"error", "error-msg", "result"}
    assert data["error"] is True
    return data


@pytest.mark.parametrize(("content_type", "body"), MULTIPART)
def test_a_bad_multipart_body_gets_the_envelope_on_every_path(processes, content_type, body):
    _daphne, address = processes.daphne()
    for path, expected in (("/userStatus/200", 401), ("/no-such-endpoint", 404)):
        request = post(path, content_type.encode("latin-1").decode("latin-1"), body)
        assert_envelope(*raw(address, request), expected)


def test_static_traversal_through_daphne_is_a_404_envelope(processes):
    _daphne, address = processes.daphne()
    for path in ("/static/..", "/static/../manage.py", "/static/%2e%2e/manage.py"):
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        assert_envelope(*raw(address, request.encode()), 404)


def test_what_never_reaches_django_is_daphnes_own_answer(processes):
    """Pinned so that docs/api.md stays true: a plain 400, not the envelope."""
    _daphne, address = processes.daphne()
    status, _headers, _body = raw(address, b"NOT AN HTTP REQUEST\r\n\r\n")
    assert status == 400
    status, _headers, _body = raw(
        address, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n"
    )
    assert status == 400
