"""`create_api_key NAME [--company SLUG ... | --all-companies] [--network CIDR ...] [--rate N/min]`.

Prints the new key.
"""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from pbx.api.authentication import default_rate
from pbx.models import ApiKey, Company
from pbx.models.directory import throttle_rate_validator


class Command(BaseCommand):
    help = (
        "Creates an API key and prints it once; the last line of the output is the key alone. "
        "With --company SLUG (repeatable) it sees only those companies; without it (or with "
        "--all-companies) it sees every company, and the key records that explicitly. "
        "Without --network it is accepted from any client address. Without --rate it has the "
        "server's rate limit (SWAN_THROTTLE_RATE)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="A unique name for the key, e.g. the client it is for.")
        parser.add_argument(
            "--company",
            action="append",
            default=[],
            dest="companies",
            metavar="SLUG",
            help="Limit the key to this company (repeatable).",
        )
        parser.add_argument(
            "--all-companies",
            action="store_true",
            help="The key sees every company, present and future.",
        )
        parser.add_argument(
            "--network",
            action="append",
            default=[],
            dest="networks",
            metavar="CIDR",
            help="Accept the key only from this client network (repeatable).",
        )
        parser.add_argument(
            "--rate",
            default="",
            metavar="N/PERIOD",
            help="This key's rate limit, e.g. 60000/min or 1000/s (period s, m, h or d). "
            "Default: the server's SWAN_THROTTLE_RATE.",
        )

    def handle(
        self,
        *args,
        name: str,
        companies: list[str],
        all_companies: bool,
        networks: list[str],
        rate: str,
        **options,
    ):
        name = name.strip()
        if all_companies and companies:
            raise CommandError("Give --all-companies or --company SLUG (repeatable), not both.")
        # contract.md: `create_api_key NAME` is a key of every company; the key stores it as its
        # `all_companies` flag, never as an empty company list.
        all_companies = not companies
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"An API key named '{name}' already exists.")
        slugs = sorted({slug.strip().lower() for slug in companies})
        found = list(Company.objects.filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {company.slug for company in found})
        if unknown:
            raise CommandError(f"Unknown company slug: {', '.join(unknown)}.")
        allowed = [self._network(item) for item in networks]
        rate = rate.strip()
        if rate:
            try:
                throttle_rate_validator(rate)
            except ValidationError as exc:
                raise CommandError(
                    f"--rate '{rate}' is not a rate: give requests per second, minute, hour or "
                    "day, such as 60000/min, 1000/s or 5000/h."
                ) from exc

        key = ApiKey(
            name=name,
            all_companies=all_companies,
            allowed_networks="\n".join(allowed),
            throttle_rate=rate,
        )
        raw = key.set_new_key()
        try:
            key.full_clean()
            with transaction.atomic():
                key.save()
                key.companies.set(found)
        except ValidationError as exc:
            raise CommandError(
                "; ".join(
                    f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()
                )
            ) from exc
        except IntegrityError as exc:
            raise CommandError(f"An API key named '{name}' already exists.") from exc

        scope = "all companies" if all_companies else ", ".join(c.slug for c in found)
        limit = rate or f"the default rate limit ({default_rate()})"
        self.stdout.write(f"Created API key '{name}' ({key.prefix}…) for {scope}, {limit}.")
        self.stdout.write("Store it now: it is kept only as a hash and cannot be shown again.")
        self.stdout.write(raw)

    def _network(self, item: str) -> str:
        try:
            return str(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError as exc:
            raise CommandError(
                f"'{item}' is not an IP network such as 10.0.0.0/8 or 192.168.1.20."
            ) from exc
