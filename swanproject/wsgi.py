"""WSGI entry point: the HTTP tier of `make serve` (gunicorn; swanproject/webtier.py).

Websockets are not served here but by daphne (asgi.py), behind the same proxy.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "swanproject.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402

if settings.SERVE_STATIC:
    from swanproject.serving import EnvelopeWSGIStaticFilesHandler

    application = EnvelopeWSGIStaticFilesHandler(application)

# As in asgi.py: what is loaded now lives as long as the process (and, with gunicorn's
# --preload, is shared by its forked workers); keep it out of the collector's full passes.
gc.collect()
gc.freeze()
