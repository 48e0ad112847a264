"""AMI wire format: `Key: Value` lines ending in CRLF, a frame ending with an empty line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# The AMI protocol version of Asterisk 20, not the Asterisk version.
BANNER = "Asterisk Call Manager/9.0.0"


class AmiMessage:
    """One AMI frame: headers in order, repeated keys kept, lookups ignore key case."""

    __slots__ = ("headers",)

    def __init__(self, headers: Iterable[tuple[str, object]] = ()):
        self.headers: list[tuple[str, str]] = [(key, str(value)) for key, value in headers]

    def get(self, key: str, default: str | None = None) -> str | None:
        wanted = key.lower()
        for name, value in self.headers:
            if name.lower() == wanted:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        wanted = key.lower()
        return [value for name, value in self.headers if name.lower() == wanted]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.headers)

    def __repr__(self) -> str:
        return f"Message({self.headers!r})"

    def keys(self) -> list[str]:
        return [name for name, _ in self.headers]

    @property
    def event(self) -> str | None:
        return self.get("Event")

    def add(self, key: str, value: object) -> AmiMessage:
        self.headers.append((key, str(value)))
        return self

    def encode(self) -> bytes:
        lines = "".join(f"{key}: {value}\r\n" for key, value in self.headers)
        return (lines + "\r\n").encode("utf-8")


class FrameDecoder:
    """Splits a byte stream into frames; accepts bare LF as well as CRLF."""

    def __init__(self) -> None:
        self._buffer = b""
        self._headers: list[tuple[str, str]] = []

    def feed(self, data: bytes) -> list[AmiMessage]:
        self._buffer += data
        frames: list[AmiMessage] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                return frames
            raw, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line:
                # Asterisk processes even an empty frame (answering "Missing action in request").
                frames.append(AmiMessage(self._headers))
                self._headers = []
                continue
            key, sep, value = line.partition(":")
            if sep:
                self._headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
