"""manage.py setup_demo: the demo directory, an admin login and a demo API key, ready to try."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from pbx.directory.loading import directory_load
from pbx.models import ApiKey

DEMO_DIRECTORY = Path(__file__).resolve().parents[2] / "demo" / "directory.json"
ADMIN_USERNAME = "admin"
API_KEY_NAME = "demo"
# The admin's own phone for the dashboard's listen, whisper and barge: the simulator answers it.
DEMO_SUPERVISOR_PHONE = "PJSIP/299"


class Command(BaseCommand):
    help = (
        "Loads the demo directory, ensures the superuser 'admin' and the API key 'demo', and "
        "prints how to log in and call the API. Safe to run again: the key is rotated so that the "
        "printed one works, and an existing admin password is kept unless --password is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--password",
            help="Password for 'admin'; replaces an existing one. A new admin otherwise gets "
            "$DEMO_ADMIN_PASSWORD, or a generated password that is printed.",
        )
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Where the service listens."
        )

    def handle(self, *args, password: str | None, base_url: str, **options) -> None:
        document = json.loads(DEMO_DIRECTORY.read_text(encoding="utf-8"))
        with transaction.atomic():
            report = directory_load(document)
            password_line = self._ensure_admin(password)
            phone = self._ensure_phone()
            raw_key = self._rotate_api_key()

        company = document["companies"][0]
        extension = company["users"][0]["extension"]
        base = base_url.rstrip("/")
        api = f"{base}/{settings.SWAN_URL_PREFIX}" if settings.SWAN_URL_PREFIX else base
        bearer = f'curl -H "Authorization: Bearer {raw_key}"'
        lines = [
            "Demo directory:",
            *(f"  {line}" for line in str(report).splitlines()),
            "",
            f"Admin:    {base}/admin/",
            f"Login:    {ADMIN_USERNAME}",
            f"Password: {password_line}",
            f"Phone:    {phone} (the admin's, rung to listen in on an agent's call from the "
            "dashboard's Actions; the simulated PBX answers it)",
            f"API key:  {raw_key}",
            "          (shown only now; run setup_demo again for a new one)",
            "",
            "Try:",
            f"  {bearer} {api}/blf-users/{company['slug']}",
            f"  {bearer} {api}/company-numbers/{company['slug']}",
            f'  curl -H "X-Api-Key: {raw_key}" {api}/username/{extension}',
            "",
            f"API docs: {base}/api/docs/",
            f"Dashboard: {base}/dashboard/ (log in as admin; live from the simulated PBX)",
        ]
        self.stdout.write("\n".join(lines))

    def _ensure_admin(self, password: str | None) -> str:
        """Creates or repairs the superuser; returns what to print about its password."""
        User = get_user_model()
        user = User.objects.filter(username=ADMIN_USERNAME).first()
        if user is None:
            user = User(username=ADMIN_USERNAME, email="admin@example.com")
            given = password or settings.DEMO_ADMIN_PASSWORD
            shown = "(as given)" if given else None
            password = given or secrets.token_urlsafe(12)
            shown = shown or password
        elif password:
            shown = "(changed, as given)"
        else:
            shown = "(unchanged: the existing password is kept; --password replaces it)"
        if password:
            user.set_password(password)
        user.is_staff = user.is_superuser = user.is_active = True
        user.save()
        return shown

    def _ensure_phone(self) -> str:
        """The admin's supervisor profile and phone; a phone set since is kept."""
        from dashboard.models import Supervisor

        admin = get_user_model().objects.get(username=ADMIN_USERNAME)
        supervisor, _created = Supervisor.objects.get_or_create(user=admin)
        if not supervisor.phone:
            supervisor.phone = DEMO_SUPERVISOR_PHONE
            supervisor.save(update_fields=["phone"])
        return supervisor.phone

    def _rotate_api_key(self) -> str:
        # Only the hash is stored, so a second run can only show a working key by issuing a new one.
        key = ApiKey.objects.filter(name=API_KEY_NAME).first() or ApiKey(name=API_KEY_NAME)
        raw = key.set_new_key()
        key.is_active = True
        key.all_companies = True
        key.save()
        return raw
