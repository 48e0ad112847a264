"""A gateway that passes every call on to the real one and keeps what the PBX answered to each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pbx.gateway import PbxActionFailed, PbxGateway, PbxUnavailable, SpyRequest


@dataclass(frozen=True)
class PbxAnswer:
    action: str  # the AMI action: QueuePause, QueueAdd, QueueRemove, Originate, DND
    target: str  # what it acted on: "PJSIP/201", "q-sales PJSIP/201", "PJSIP/250 → PJSIP/201-…"
    ok: bool
    message: str  # the PBX's `Message:`, or why there was no answer

    def line(self) -> str:
        return f"{self.action} {self.target}: {self.message or ('ok' if self.ok else 'error')}"

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "target": self.target,
            "ok": self.ok,
            "message": self.message,
        }


class Transcript:
    """Wraps a gateway for one dashboard action: the services run unchanged on it (they see
    the same answers and the same errors), and `answers` says afterwards what the PBX said."""

    def __init__(self, gateway: PbxGateway):
        self.gateway = gateway
        self.answers: list[PbxAnswer] = []

    def _run(self, action: str, target: str, call: Callable[[], str | None]) -> str:
        try:
            message = call()
        except PbxActionFailed as exc:
            self.answers.append(PbxAnswer(action, target, False, exc.message))
            raise
        except PbxUnavailable as exc:
            self.answers.append(PbxAnswer(action, target, False, f"no answer: {exc}"))
            raise
        self.answers.append(PbxAnswer(action, target, True, message or ""))
        return message or ""

    def queue_pause(
        self, *, interface: str, paused: bool, queue: str | None = None, reason: str = ""
    ) -> str:
        return self._run(
            "QueuePause",
            f"{queue} {interface}" if queue else interface,
            lambda: self.gateway.queue_pause(
                interface=interface, paused=paused, queue=queue, reason=reason
            ),
        )

    def queue_add(
        self,
        *,
        queue: str,
        interface: str,
        member_name: str = "",
        state_interface: str = "",
        penalty: int = 0,
        paused: bool = False,
    ) -> str:
        return self._run(
            "QueueAdd",
            f"{queue} {interface}",
            lambda: self.gateway.queue_add(
                queue=queue,
                interface=interface,
                member_name=member_name,
                state_interface=state_interface,
                penalty=penalty,
                paused=paused,
            ),
        )

    def queue_remove(self, *, queue: str, interface: str) -> str:
        return self._run(
            "QueueRemove",
            f"{queue} {interface}",
            lambda: self.gateway.queue_remove(queue=queue, interface=interface),
        )

    def set_dnd(self, *, key: str, enabled: bool, reason: str = "") -> str:
        return self._run(
            "DND",
            f"{key} {'on' if enabled else 'off'}",
            lambda: self.gateway.set_dnd(key=key, enabled=enabled, reason=reason),
        )

    def spy(self, request: SpyRequest) -> str:
        return self._run(
            "Originate",
            f"{request.device} → ChanSpy {request.channel} ({request.mode})",
            lambda: self.gateway.spy(request),
        )
