"""A recording PBX gateway: it remembers every call and answers as the test scripts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from pbx.gateway import (
    OriginateRequest,
    PbxActionFailed,
    PbxAddress,
    PbxUnavailable,
    SpyRequest,
    check_ami_value,
)
from pbx.gateway.base import spy_data


class RecordingGateway:
    """Used through settings.PBX_GATEWAY = "tests.fakes.RecordingGateway".

    Class-level state, since the view builds its own instance: `calls` records
    (action, arguments); `failures` maps an action to a callable deciding an error for a call.
    """

    calls: ClassVar[list[tuple[str, dict]]] = []
    addresses: ClassVar[list[PbxAddress]] = []  # the PBX each gateway was opened to
    failures: ClassVar[dict[str, Callable[[dict], Exception | None]]] = {}
    unreachable: ClassVar[bool] = False
    closed: ClassVar[int] = 0

    @classmethod
    def reset(cls) -> None:
        cls.calls = []
        cls.addresses = []
        cls.failures = {}
        cls.unreachable = False
        cls.closed = 0

    @classmethod
    def for_address(cls, address: PbxAddress) -> RecordingGateway:
        cls.addresses.append(address)
        return cls()

    def _do(self, action: str, **arguments) -> None:
        for name, value in arguments.items():  # like AmiGateway: nothing unchecked is sent
            if isinstance(value, str):
                check_ami_value(name, value)
        if self.unreachable:  # like AmiGateway, which connects on its first action
            raise PbxUnavailable("connection refused")
        decide = self.failures.get(action)
        error = decide(arguments) if decide else None
        if error is not None:
            raise error
        self.calls.append((action, arguments))

    def originate(self, request: OriginateRequest) -> bool:
        self._do("Originate", request=request)
        return True

    def spy(self, request: SpyRequest) -> str:
        spy_data(request)  # like AmiGateway: a bad channel or mode never leaves
        self._do("Spy", request=request)
        return "Originate successfully queued"

    # Asterisk's answers (apps/app_queue.c), as AmiGateway returns them
    def queue_pause(self, *, interface, paused, queue=None, reason=""):
        self._do("QueuePause", interface=interface, paused=paused, queue=queue, reason=reason)
        return f"Interface {'paused' if paused else 'unpaused'} successfully"

    def queue_add(
        self, *, queue, interface, member_name="", state_interface="", penalty=0, paused=False
    ):
        self._do("QueueAdd", queue=queue, interface=interface, member_name=member_name)
        return "Added interface to queue"

    def queue_remove(self, *, queue, interface):
        self._do("QueueRemove", queue=queue, interface=interface)
        return "Removed interface from queue"

    def set_dnd(self, *, key, enabled, reason=""):
        self._do("DND", key=key, enabled=enabled, reason=reason)
        database = "Updated database successfully" if enabled else "Key deleted successfully"
        return f"{database}; Variable Set"

    def snapshot(self):
        raise AssertionError("the endpoints under test never ask for a snapshot")

    def close(self) -> None:
        type(self).closed += 1


def refuse(message: str) -> Callable[[dict], Exception]:
    return lambda arguments: PbxActionFailed("action", message)


def drop() -> Callable[[dict], Exception]:
    return lambda arguments: PbxUnavailable("connection dropped")
