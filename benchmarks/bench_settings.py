"""Benchmark-only settings: SWAN's own, with a URLconf that adds a bare Django view (the ceiling).

Used by benchmarks/load.py as `DJANGO_SETTINGS_MODULE=benchmarks.bench_settings`; never in
production. Everything else still comes from the environment, as in swanproject.settings.
"""

from swanproject.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bench_urls"
