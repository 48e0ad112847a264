"""AMI frames: ordered key/value pairs parsed from the wire, and actions encoded for it."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator, Mapping

from pbx.text import has_control_character


def check_ami_value(name: str, value: object) -> str:
    """AMI is line based: a CR, LF or other control character would inject headers."""
    text = "" if value is None else str(value)
    if has_control_character(text):
        raise ValueError(f"AMI value for {name!r} contains a control character")
    return text


END_COMMAND = "--END COMMAND--"


class Frame(Mapping[str, str]):
    """One AMI message: its (key, value) pairs in wire order; lookups ignore key case.

    `frame["Channel"]` gives the first value, `frame.get_all("ChanVariable")` every value of a
    repeated key, `frame.pairs` the message exactly as it came.
    """

    __slots__ = ("_index", "pairs")

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = pairs
        self._index: dict[str, list[str]] | None = None

    def _lookup(self) -> dict[str, list[str]]:
        if self._index is None:
            index: dict[str, list[str]] = {}
            for key, value in self.pairs:
                index.setdefault(key.lower(), []).append(value)
            self._index = index
        return self._index

    def __getitem__(self, key: str) -> str:
        values = self._lookup().get(key.lower())
        if not values:
            raise KeyError(key)
        return values[0]

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self.pairs:
            if key.lower() not in seen:
                seen.add(key.lower())
                yield key

    def __len__(self) -> int:
        return len(self._lookup())

    def get_all(self, key: str) -> list[str]:
        """Every value of `key`, in order (`ChanVariable`, `Variable`, `Output` repeat)."""
        return list(self._lookup().get(key.lower(), ()))

    @property
    def name(self) -> str:
        """The event name, or "" for a response."""
        return self.get("Event", "")

    @property
    def is_event(self) -> bool:
        # OriginateResponse is an event that carries a `Response:` header: `Event` decides.
        return "event" in self._lookup()

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def __repr__(self) -> str:
        return f"Frame({self.pairs!r})"


class FrameParser:
    """Turns the AMI byte stream into frames; feed it whatever `recv` returned."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""
        self._pairs: list[tuple[str, str]] = []
        self._follows = False  # inside an old-style `Response: Follows` command output
        self._in_output = False
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[Frame]:
        lines = (self._tail + self._decoder.decode(data)).split("\n")
        self._tail = lines.pop()
        frames: list[Frame] = []
        for line in lines:
            self._line(line[:-1] if line.endswith("\r") else line, frames)
        return frames

    def _line(self, line: str, frames: list[Frame]) -> None:
        if self.banner is None:
            if not line.strip():
                return
            # The banner is one line with no blank line after it; a frame may follow at once.
            if ":" not in line:
                self.banner = line
                return
            self.banner = ""
        if self._follows:
            self._output_line(line, frames)
        elif not line:
            self._finish(frames)
        else:
            key, _, value = line.partition(":")
            if not _:
                key, value = "", line
            value = value.lstrip(" ")
            self._pairs.append((key, value))
            if key.lower() == "response" and value.strip().lower() == "follows":
                self._follows, self._in_output = True, False

    def _output_line(self, line: str, frames: list[Frame]) -> None:
        if line.endswith(END_COMMAND):
            if line[: -len(END_COMMAND)]:
                self._pairs.append(("Output", line[: -len(END_COMMAND)]))
            self._follows = False
        elif not line and not self._in_output:
            # A Follows answer without output and without the end marker (seen in captures).
            self._follows = False
            self._finish(frames)
        else:
            key, sep, value = line.partition(":")
            if not self._in_output and sep and key and not any(c.isspace() for c in key):
                self._pairs.append((key, value.lstrip(" ")))
            else:
                self._in_output = True
                self._pairs.append(("Output", line))

    def _finish(self, frames: list[Frame]) -> None:
        if self._pairs:
            frames.append(Frame(self._pairs))
            self._pairs = []


def encode_action(pairs: Iterable[tuple[str, object]]) -> bytes:
    """The wire bytes of one action; raises ValueError on any control character, before sending."""
    lines = [
        f"{check_ami_value('header name', key)}: {check_ami_value(key, value)}\r\n"
        for key, value in pairs
    ]
    return ("".join(lines) + "\r\n").encode("utf-8")
