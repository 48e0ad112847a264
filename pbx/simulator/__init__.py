"""A simulated Asterisk: the AMI protocol on TCP, a call-centre model, queue_log and Master.csv."""

from __future__ import annotations

from pbx.simulator.callcentre import CallCentre, OriginateSpec
from pbx.simulator.config import (
    QUIET,
    Behaviour,
    CentreConfig,
    CompanyConfig,
    DeviceConfig,
    MemberConfig,
    QueueConfig,
)
from pbx.simulator.log_files import History
from pbx.simulator.server import SimulatedPbx

__all__ = [
    "QUIET",
    "Behaviour",
    "CallCentre",
    "CentreConfig",
    "CompanyConfig",
    "DeviceConfig",
    "History",
    "MemberConfig",
    "OriginateSpec",
    "QueueConfig",
    "SimulatedPbx",
]
