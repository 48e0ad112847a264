"""Live channels as Asterisk names and numbers them, and the device and extension state codes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

STATE_DOWN, STATE_RING, STATE_RINGING, STATE_UP = 0, 4, 5, 6
STATE_DESC = {STATE_DOWN: "Down", STATE_RING: "Ring", STATE_RINGING: "Ringing", STATE_UP: "Up"}

# AST_DEVICE_* numbers, as QueueMember rows and Queue*Member* events send `Status`.
DEVICE_STATUS = {
    "UNKNOWN": 0,
    "NOT_INUSE": 1,
    "INUSE": 2,
    "BUSY": 3,
    "INVALID": 4,
    "UNAVAILABLE": 5,
    "RINGING": 6,
    "RINGINUSE": 7,
    "ONHOLD": 8,
}

# AST_EXTENSION_* numbers and texts of ExtensionStatus; Asterisk folds UNKNOWN into idle.
EXTENSION_STATUS = {
    "UNKNOWN": (0, "Idle"),
    "NOT_INUSE": (0, "Idle"),
    "INUSE": (1, "InUse"),
    "BUSY": (2, "Busy"),
    "INVALID": (4, "Unavailable"),
    "UNAVAILABLE": (4, "Unavailable"),
    "RINGING": (8, "Ringing"),
    "RINGINUSE": (9, "InUse&Ringing"),
    "ONHOLD": (16, "Hold"),
}

UNKNOWN = "<unknown>"


@dataclass
class SimulatedChannel:
    name: str
    uniqueid: str
    linkedid: str
    device: str
    created: float
    caller_num: str = ""
    caller_name: str = ""
    connected_num: str = ""
    connected_name: str = ""
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    language: str = "en"
    account_code: str = ""
    state: int = STATE_DOWN
    answered: float | None = None
    application: str = ""
    app_data: str = ""
    bridge_id: str = ""

    @property
    def state_desc(self) -> str:
        return STATE_DESC.get(self.state, "Unknown")


class ChannelFactory:
    """Uniqueids are `<epoch>.<n>` and channel names `<device>-<8 hex>`, both from one counter."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def new(
        self, device: str, now: float, *, linkedid: str = "", uniqueid: str = ""
    ) -> SimulatedChannel:
        n = next(self._counter)
        uid = uniqueid or f"{int(now)}.{n}"
        return SimulatedChannel(
            name=f"{device}-{n:08x}",
            uniqueid=uid,
            linkedid=linkedid or uid,
            device=device,
            created=now,
        )


def format_duration(seconds: float) -> str:
    total = max(int(seconds), 0)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
