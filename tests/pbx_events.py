"""AMI frames (as recorded or written in a test) through the gateway's parsing into live state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pbx.gateway.events import PbxEvent, parse_event
from pbx.live.state_tables import LiveChanges, LiveState


def pbx_events(frames: Iterable[Mapping[str, str]]) -> list[PbxEvent]:
    return [parse_event(frame) for frame in frames]


def apply_frames(state: LiveState, frames: Iterable[Mapping[str, str]]) -> LiveChanges:
    """What the listener does with a batch: the gateway's typed events applied in one go."""
    return state.apply_events(pbx_events(frames))
