"""userStatus POST pause on a real Asterisk, and what one AMI login per REST action costs it.

    .venv/bin/python benchmarks/real_pbx_actions.py [--version 22.10.1] [--runs 50]

Starts an Asterisk of ../shared/asterisk (layout `pjsip`, phones 201-205) and a throwaway SQLite
database, then prints:
- the latency of `POST /userStatus/201 status=pause` (in-process, Django's test client) over
  `--runs` runs (p50/p95), each followed by an unpause;
- Asterisk's CPU time (utime+stime of its process, /proc/<pid>/stat) and log lines
  (messages.log, full.log) per QueuePause, for a new AMI login per action (what the REST views
  do: pbx/gateway/connection.py opens a gateway per request) against one kept-open session.
Figures only, no targets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def lines(path: Path) -> int:
    return len(path.read_text(errors="replace").splitlines()) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=None)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    from tests.realpbx import layouts, pbx

    found = pbx.tarballs()
    if not found:
        sys.exit(f"no Asterisk package in {pbx.SHARED_ASTERISK}")
    version = args.version or next(iter(found))
    work = Path(tempfile.mkdtemp(prefix="swan-bench-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swanproject.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["SWAN_THROTTLE_RATE"] = "1000000/min"
    import django

    package = pbx.unpacked(found[version])
    asterisk = pbx.Asterisk(
        package, layouts.write_overrides(layouts.LAYOUTS["pjsip"], package, work / "conf")
    )
    os.environ.update(AMI_HOST="127.0.0.1", AMI_PORT=str(asterisk.ami_port))
    os.environ.update(AMI_USERNAME=pbx.AMI_USERNAME, AMI_SECRET=pbx.AMI_SECRET)
    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from pbx.directory.loading import directory_load
    from pbx.gateway.ami import AmiGateway
    from pbx.models import ApiKey, Company
    from tests.realpbx.conftest import directory_document

    call_command("migrate", verbosity=0)
    directory_load(directory_document())
    key = ApiKey(name="bench")
    raw = key.set_new_key()
    key.save()
    key.companies.set(Company.objects.all())
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    phones = pbx.Phones(asterisk)
    asterisk.start()
    try:
        phones.start(*pbx.EXTENSIONS)
        print(f"Asterisk {asterisk.version}, runs={args.runs}")
        pause_ms = []
        for _ in range(args.runs):
            started = time.perf_counter()
            response = client.post(
                "/userStatus/201",
                {"status": "pause", "reason": "Bench"},
                content_type="application/json",
            )
            pause_ms.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
            client.post("/userStatus/201", {"status": "available"}, content_type="application/json")
        ordered = sorted(pause_ms)
        print(
            f"userStatus POST pause: p50={statistics.median(ordered):.1f}ms "
            f"p95={ordered[int(0.95 * (len(ordered) - 1))]:.1f}ms max={ordered[-1]:.1f}ms"
        )

        logs = asterisk.log_dir

        def measure(label: str, action) -> None:
            time.sleep(1)  # let qualify and registration traffic settle
            cpu, messages, full = (
                asterisk.cpu_seconds(),
                lines(logs / "messages.log"),
                lines(logs / "full.log"),
            )
            started = time.perf_counter()
            for n in range(args.runs):
                action(n % 2 == 0)
            elapsed = time.perf_counter() - started
            cpu = asterisk.cpu_seconds() - cpu
            print(
                f"{label}: {elapsed / args.runs * 1000:.1f}ms per action, Asterisk CPU "
                f"{cpu / args.runs * 1000:.2f}ms per action, log lines per action: "
                f"messages.log {(lines(logs / 'messages.log') - messages) / args.runs:.1f}, "
                f"full.log {(lines(logs / 'full.log') - full) / args.runs:.1f}"
            )

        def settings_gateway() -> AmiGateway:
            return AmiGateway("127.0.0.1", asterisk.ami_port, pbx.AMI_USERNAME, pbx.AMI_SECRET)

        def login_per_action(paused: bool) -> None:
            gateway = settings_gateway()
            try:
                gateway.queue_pause(interface="PJSIP/201", paused=paused, reason="Bench")
            finally:
                gateway.close()

        kept = settings_gateway()
        measure("one AMI login per action (today's REST views)", login_per_action)
        measure(
            "one kept-open AMI session",
            lambda paused: kept.queue_pause(interface="PJSIP/201", paused=paused, reason="Bench"),
        )
        kept.close()
    finally:
        phones.stop_all()
        asterisk.stop()


if __name__ == "__main__":
    main()
