"""What the simulated PBX knows (companies, devices, queues) and how its callers and agents behave."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CompanyConfig:
    slug: str
    name: str = ""
    time_zone: str = "Europe/Madrid"
    dial_context: str = "from-internal"


@dataclass(frozen=True)
class DeviceConfig:
    """A phone the PBX serves, e.g. `PJSIP/200` for extension 200."""

    interface: str
    extension: str
    name: str = ""
    company: str = ""
    reachable: bool = True


@dataclass(frozen=True)
class MemberConfig:
    interface: str
    name: str = ""  # the queue member name; Asterisk defaults it to the interface
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    # "dynamic": restored at boot by persistentmembers, QueueRemove drops it (the directory's
    # members); "static": a queues.conf member, which QueueRemove refuses.
    membership: str = "dynamic"


@dataclass(frozen=True)
class QueueConfig:
    name: str
    company: str = ""
    members: tuple[MemberConfig, ...] = ()
    exten: str = ""  # the number callers dial to reach the queue; defaults to the name
    strategy: str = "rrmemory"
    service_level: int = 20
    weight: int = 1


@dataclass(frozen=True)
class CentreConfig:
    companies: tuple[CompanyConfig, ...] = ()
    devices: tuple[DeviceConfig, ...] = ()
    queues: tuple[QueueConfig, ...] = ()


@dataclass(frozen=True)
class Behaviour:
    """Rates and durations of the simulated call centre, in simulated seconds."""

    call_rate: float = 1.0  # new callers per minute across all queues
    answer_probability: float = 0.85
    ring_seconds: tuple[float, float] = (2.0, 10.0)
    ring_timeout: float = 15.0
    retry_seconds: float = 5.0
    talk_seconds: tuple[float, float] = (20.0, 180.0)
    patience_seconds: tuple[float, float] = (20.0, 180.0)
    agent_hangup_probability: float = 0.4
    pauses_per_agent_hour: float = 1.0
    pause_reasons: tuple[tuple[str, float, float], ...] = (
        ("Descanso", 120.0, 600.0),
        ("Comida", 900.0, 1800.0),
    )
    originate_answer_seconds: tuple[float, float] = (1.0, 4.0)
    destination_answer_probability: float = 0.8
    originate_talk_seconds: tuple[float, float] = (10.0, 120.0)
    trunk: str = "PJSIP/trunk"
    inbound_context: str = "from-pstn"
    language: str = "es"
    caller_prefixes: tuple[str, ...] = field(default=("6", "7", "9"))


QUIET = Behaviour(call_rate=0.0, pauses_per_agent_hour=0.0)
