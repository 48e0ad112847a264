"""Serves the demo: daphne on 127.0.0.1:8000 with the ASGI application (HTTP + websockets)."""

from __future__ import annotations

import logging

from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from django.core.management.base import BaseCommand

logger = logging.getLogger("swan.demo")


class Command(BaseCommand):
    help = "Serve SWAN with daphne for the demo (`make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        from swanproject.asgi import application

        self.stdout.write(f"SWAN serving on http://{host}:{port}/ (Ctrl+C stops)")
        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
        ).run()
