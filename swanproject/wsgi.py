"""WSGI entry point, for management tooling; the service itself runs under daphne (asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swanproject.settings")
application = get_wsgi_application()
