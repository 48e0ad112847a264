"""SWAN settings: every value comes from the environment, with defaults that need no service."""

from __future__ import annotations

from pathlib import Path

import environ
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# With no environment at all SWAN runs as a development box; production sets DEBUG=false.
DEBUG = env.bool("DEBUG", default=True)
_DEV_SECRET = "django-insecure-swan-development-only"
SECRET_KEY = env("SECRET_KEY", default=_DEV_SECRET if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "pbx",
    "agenda",
    "terminals",
    "dashboard",
]

MIDDLEWARE = [
    "swanproject.proxy.ForwardedForMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "swanproject.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "swanproject.envelope.LegacyStatusMiddleware",
    "swanproject.metrics.RequestMetricsMiddleware",
]

ROOT_URLCONF = "swanproject.urls"
ASGI_APPLICATION = "swanproject.asgi.application"
WSGI_APPLICATION = "swanproject.wsgi.application"
# Legacy clients call `userStatus/200` and `userStatus/200/` alike; a redirect would lose a POST body.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file test database, so that a server subprocess started by a test sees the same data.
    DATABASES["default"]["TEST"] = {
        "NAME": env("DATABASE_TEST_NAME", default=str(BASE_DIR / "test_db.sqlite3"))
    }
    # The listener, ingest and every request write at once. WAL lets readers go on while one
    # writes; IMMEDIATE takes the write lock when a transaction starts, so a transaction that
    # read first never fails "database is locked" at once when it upgrades to a write (SQLite
    # refuses that upgrade once another writer committed); the timeout is how long a writer
    # waits for the lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # Explicit test name: channels' live server otherwise connects to the wrong database (channels#2176).
    DATABASES["default"]["TEST"] = {
        "NAME": env("DATABASE_TEST_NAME", default="test_" + DATABASES["default"]["NAME"])
    }
    # daphne runs each request's sync code on a thread of its own, so a persistent connection is
    # never reused (it piles up: 32 clients held 76 connections). psycopg's pool was tried and
    # dropped: a request cancelled mid-flight (SIGTERM, client gone) never gave its connection
    # back, and shutdown then waited on the pool. One connection per request, closed at its end.
    # gunicorn's sync workers (`make serve`, swanproject/webtier.py) are processes that serve
    # one request at a time: there each keeps one connection, checked before it is reused.
    DATABASE_CONN_MAX_AGE = env.int("DATABASE_CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_MAX_AGE"] = DATABASE_CONN_MAX_AGE
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool(
        "DATABASE_CONN_HEALTH_CHECKS", default=True
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Call history (docs/history.md)
CDR_TIME_ZONE = env("CDR_TIME_ZONE", default=env("TIME_ZONE", default="Europe/Madrid"))
CDR_DATABASE_URL = env("CDR_DATABASE_URL", default="")
if CDR_DATABASE_URL:
    DATABASES["cdr"] = env.db_url_config(CDR_DATABASE_URL)
    DATABASES["cdr"]["TEST"] = {"MIRROR": "default"}  # never create a test DB on the PBX's server
CDR_DATABASE_TABLE = env("CDR_DATABASE_TABLE", default="cdr")
RECORDING_URL_MAX_AGE = env.int("RECORDING_URL_MAX_AGE", default=3600)
RECORDING_ADMIN_LINK_TEMPLATE = env("RECORDING_ADMIN_LINK_TEMPLATE", default="")

REDIS_URL = env("REDIS_URL", default="")
# redis-py 8 reads with a 5 s socket timeout by default: exactly channels-redis's blocking pop
# (BZPOPMIN, 5 s), so every idle websocket ended with a TimeoutError (1011) after ~5 s
# (channels_redis#422). The layer's reads wait longer than the pop, yet a dead connection is
# still noticed; the same settings are right for redis-py 5 to 7, so no version pin is needed.
CHANNEL_LAYER_REDIS_OPTIONS = {
    "socket_connect_timeout": 5,
    "socket_timeout": 15,  # > channels-redis's brpop_timeout (5 s)
    "socket_keepalive": True,
    "retry_on_timeout": True,  # one immediate retry on a timeout or a dropped connection
    "health_check_interval": 30,
}
# The cache serves requests (throttling, dashboard sequence numbers): fail fast, never block one.
CACHE_REDIS_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "retry_on_timeout": True,
    "health_check_interval": 30,
}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis, with a receive that outlives a Redis hiccup (docs/websocket.md).
            "BACKEND": "swanproject.channel_layer.ResilientRedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, **CHANNEL_LAYER_REDIS_OPTIONS}],
                "recovery_limit": env.float("CHANNEL_LAYER_RECOVERY_SECONDS", default=60.0),
                # Connections per process; more concurrent commands wait for one (up to the
                # timeout) instead of failing with "Too many connections".
                "pool_size": env.int("CHANNEL_LAYER_POOL_SIZE", default=50),
                "pool_timeout": env.float("CHANNEL_LAYER_POOL_TIMEOUT", default=10.0),
                # Messages a socket (and a process) may have waiting before the oldest is
                # dropped (channels-redis's default is 100: four seconds of a busy company).
                # A socket that still misses one fills the gap from the buffer (docs/websocket.md).
                "capacity": 1000,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": CACHE_REDIS_OPTIONS,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The test suite only (tests/conftest.py sets it, for itself and the servers it starts): new
# passwords hashed with MD5, a hash per login instead of PBKDF2's million rounds (half a second
# on a CI core, minutes of every run). `check --deploy` refuses it (swan.E002).
TEST_PASSWORD_HASHER = env.bool("SWAN_TEST_PASSWORD_HASHER", default=False)
if TEST_PASSWORD_HASHER:
    PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *global_settings.PASSWORD_HASHERS,
    ]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env("LANGUAGE_CODE", default="es")
LANGUAGES = [("es", _("Spanish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Europe/Madrid")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "static_root")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Development and the demo serve static files from the ASGI app; production leaves them to the proxy.
SERVE_STATIC = env.bool("SERVE_STATIC", default=True)
# Peers whose X-Forwarded-For names the client (the TLS proxy; swanproject/proxy.py).
SWAN_TRUSTED_PROXIES = env.list("SWAN_TRUSTED_PROXIES", default=["127.0.0.1/32", "::1/128"])
# The websockets' port when no proxy serves them on the pages' own origin (`make serve` alone).
SWAN_WEBSOCKET_PORT = env.int("SWAN_WEBSOCKET_PORT", default=0) or None

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["swanproject.envelope.EnvelopeRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "swanproject.envelope.FirstRendererNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "swanproject.envelope.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": ["pbx.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["pbx.api.authentication.HasApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["pbx.api.authentication.ApiKeyRateThrottle"],
    # Per API key; a key's own `throttle_rate` overrides it. One helpdesk calls with one key for
    # all its agents: 1,000 agents polling userStatus every 5 s and blf-users every 10 s are
    # ~300 requests/s; 60000/min (1,000/s) serves that, plus wallboards, with headroom.
    "DEFAULT_THROTTLE_RATES": {"api_key": env("SWAN_THROTTLE_RATE", default="60000/min")},
    "EXCEPTION_HANDLER": "swanproject.envelope.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SWAN v2 API",
    "DESCRIPTION": "REST contract served to the helpdesk client (Fedesk). Every answer is the "
    "envelope {error, error-msg, result}.",
    "VERSION": "2",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The legacy paths without their optional slash, and the plain views (docs/api.md).
    "PREPROCESSING_HOOKS": ["pbx.api.openapi.preprocess_legacy_paths"],
    # The docs page loads its JS and CSS from this service, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# SWAN contract options (contract.md).
SWAN_URL_PREFIX = env("SWAN_URL_PREFIX", default="").strip("/")
SWAN_ALWAYS_HTTP_200 = env.bool("SWAN_ALWAYS_HTTP_200", default=False)
SWAN_DEFAULT_COMPANY_TIME_ZONE = env("SWAN_DEFAULT_COMPANY_TIME_ZONE", default="Europe/Madrid")
# Bracket parameters (`a[x][y]=1`) nested deeper than this are a 400, as PHP's max_input_nesting_level.
SWAN_PARAM_MAX_DEPTH = env.int("SWAN_PARAM_MAX_DEPTH", default=64)
# Request limits (docs/api.md): a larger body is a 413, more fields a 400. 10,000 agenda phones
# written the PHP way (`phones[0][name]=…&phones[0][number]=…`) are 20,000 fields, about 1 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=25_000)

# Active API keys are kept per process this long (pbx/directory/api_keys.py): a key deactivated, given other
# companies or another rate in the admin acts so within it. 0: read the key on every request.
SWAN_API_KEY_CACHE_SECONDS = env.float("SWAN_API_KEY_CACHE_SECONDS", default=5.0)

# Failed authentication per client address (pbx/directory/lockout.py): after the limit within the window,
# the address is refused for the lockout (429 for API keys; valid keys still pass).
API_KEY_FAILURE_LIMIT = env.int("API_KEY_FAILURE_LIMIT", default=20)
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AUTH_FAILURE_WINDOW_SECONDS = env.int("AUTH_FAILURE_WINDOW_SECONDS", default=300)
AUTH_LOCKOUT_SECONDS = env.int("AUTH_LOCKOUT_SECONDS", default=300)

AMI_HOST = env("AMI_HOST", default="127.0.0.1")
AMI_PORT = env.int("AMI_PORT", default=5038)
AMI_USERNAME = env("AMI_USERNAME", default="swan")
AMI_SECRET = env("AMI_SECRET", default="swan-simulator")
AMI_TIMEOUT = env.float("AMI_TIMEOUT", default=5.0)
# Click-to-call's context for companies on the settings' PBX that set none (a PBX object has its own).
PBX_DIAL_CONTEXT = env("PBX_DIAL_CONTEXT", default="from-internal")
PBX_GATEWAY = env("PBX_GATEWAY", default="pbx.gateway.ami.AmiGateway")
DEMO_ADMIN_PASSWORD = env("DEMO_ADMIN_PASSWORD", default="")
RECORDINGS_ROOT = env.path("RECORDINGS_ROOT", default=BASE_DIR / "var" / "recordings")

# Supervisor dashboard: Django logins; websocket origins besides the page's own host.
LOGIN_URL = env("LOGIN_URL", default="/accounts/login/")
LOGIN_REDIRECT_URL = env("LOGIN_REDIRECT_URL", default="/dashboard/")
DASHBOARD_ALLOWED_ORIGINS = env.list("DASHBOARD_ALLOWED_ORIGINS", default=[])
# Open websockets are re-checked this often: a revoked key or supervisor is closed within it.
DASHBOARD_REVALIDATE_SECONDS = env.float("DASHBOARD_REVALIDATE_SECONDS", default=5.0)
# The websockets' database work runs on this many threads per web process, each keeping its
# connection this many seconds (dashboard/dbpool.py): a process holds at most that many
# connections, however many sockets connect at once.
DASHBOARD_DB_THREADS = env.int("DASHBOARD_DB_THREADS", default=4)
DASHBOARD_DB_CONN_MAX_AGE = env.float("DASHBOARD_DB_CONN_MAX_AGE", default=60.0)

# Production hardening; each can be relaxed from the environment for a plain-HTTP lab.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[])
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# The directive alone submits nothing: joining the browsers' preload list stays a manual step.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTML answers only (swanproject/csp.py). Nothing is loaded from elsewhere, nothing is inline;
# {websockets} becomes the page's own host as ws:// and wss:// (the dashboard's socket).
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'{websockets}; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'",
)
# Swagger UI (/api/docs/, drf-spectacular-sidecar) sets inline styles and has a <style> block.
CONTENT_SECURITY_POLICY_DOCS = env(
    "CONTENT_SECURITY_POLICY_DOCS",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'",
)
PERMISSIONS_POLICY = env(
    "PERMISSIONS_POLICY",
    default="accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()",
)

# Operations: /healthz and /metrics (docs/deployment.md).
HEALTHZ_REQUIRED = env.list("HEALTHZ_REQUIRED", default=["database", "channel_layer"])
HEALTHZ_INGEST_LAG_SECONDS = env.int("HEALTHZ_INGEST_LAG_SECONDS", default=300)
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "format": "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
