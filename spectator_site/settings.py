"""Spectator settings: one module, driven by the environment.

Nothing set: SQLite under ``SPECTATOR_DATA_DIR`` (default ``./var``) and Channels'
in-memory layer. ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` switch to the real services.
"""

import os
import secrets
import warnings
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SPECTATOR_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _load_or_create_secret_key() -> str:
    """Keep a generated key in a local file so sessions and tickets survive restarts."""
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(50)
    key_file.touch(mode=0o600)
    key_file.write_text(key)
    return key


SECRET_KEY = os.environ.get("SECRET_KEY") or _load_or_create_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "metrics",
    "rooms",
    "spectator_site",
]

MIDDLEWARE = [
    # First: every response, redirects and errors included, carries its X-Request-ID.
    "spectator_site.logging_context.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "spectator_site.middleware.SecurityHeadersMiddleware",
    # Static files (our ES modules, CSS and the npm-installed chart library) without a CDN.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "spectator_site.urls"
ASGI_APPLICATION = "spectator_site.asgi.application"

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

# --- Database -------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": {
                # IMMEDIATE takes the write lock when a transaction starts, so concurrent
                # writers queue instead of failing half-way with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": str(DATA_DIR / "test_db.sqlite3")},
            # Reopening the file (and its PRAGMAs) per request showed up in ingest profiles.
            "CONN_MAX_AGE": 600,
        }
    }
DATABASE_IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and cache --------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Each process's room hub reads one channel; it must never fill up and drop silently.
HUB_CHANNEL_CAPACITY = env_int("SPECTATOR_HUB_CHANNEL_CAPACITY", 100_000)
SPECTATOR_REDIS_LAYER = os.environ.get("SPECTATOR_REDIS_LAYER", "core")
if REDIS_URL:
    if SPECTATOR_REDIS_LAYER == "pubsub":
        CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [REDIS_URL],
                    "capacity": 1000,
                    "channel_capacity": {"hub.*": HUB_CHANNEL_CAPACITY},
                    "expiry": 60,
                },
            }
        }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": HUB_CHANNEL_CAPACITY}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth --------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "my-home"
LOGOUT_REDIRECT_URL = "lobby"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Only an optional collectstatic fills it; WhiteNoise serves from the finders without it (but
# expects the folder to exist).
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", DATA_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# uPlot, installed from npm with the lockfile (package-lock.json) by ./run and ./test.
UPLOT_DIST = BASE_DIR / "node_modules" / "uplot" / "dist"
if UPLOT_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/uplot", UPLOT_DIST))
# WhiteNoise serves straight from the finders: no collectstatic step for ./run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# WhiteNoise's file responses are sync iterators; under ASGI Django streams them through a
# thread (fine for our few small files) and warns about it on every request.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))

# --- Security headers --------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("SPECTATOR_TLS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Browsers' preload lists are hard to leave: an operator opts in, and only then does
    # `check --deploy` stop warning (W021) about it being off.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "spectator_site.throttles.AnonRateThrottle",
        "spectator_site.throttles.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("SPECTATOR_THROTTLE_ANON", "600/min"),
        "user": os.environ.get("SPECTATOR_THROTTLE_USER", "3000/min"),
        "join": os.environ.get("SPECTATOR_THROTTLE_JOIN", "30/min"),
    },
    "NUM_PROXIES": env_int("SPECTATOR_NUM_PROXIES", 0) or None,
    "EXCEPTION_HANDLER": "spectator_site.api_errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "spectator_site.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Spectator API",
    "DESCRIPTION": "Watch reinforcement-learning bots train, live: rooms, access control, metrics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A training session's status appears in its list and detail shapes: one enum, one name.
    "ENUM_NAME_OVERRIDES": {"TrainingSessionStatusEnum": "metrics.models.TrainingSession.Status"},
}

# --- Spectator ------------------------------------------------------------------------------
# Wrong room passwords allowed per client and room inside the window before a lockout.
SPECTATOR_PASSWORD_MAX_ATTEMPTS = env_int("SPECTATOR_PASSWORD_MAX_ATTEMPTS", 5)
SPECTATOR_PASSWORD_LOCKOUT_SECONDS = env_int("SPECTATOR_PASSWORD_LOCKOUT_SECONDS", 900)
# Lifetime of the signed ticket a join hands out for the WebSocket connection.
SPECTATOR_TICKET_MAX_AGE = env_int("SPECTATOR_TICKET_MAX_AGE", 120)
# Seconds between in-process expiry sweeps; 0 turns the sweeper off.
SPECTATOR_SWEEP_INTERVAL = env_int("SPECTATOR_SWEEP_INTERVAL", 30)
SPECTATOR_MAX_ROOM_HOURS = env_int("SPECTATOR_MAX_ROOM_HOURS", 24 * 30)
# Largest accepted game frame (image bytes).
SPECTATOR_MAX_FRAME_BYTES = env_int("SPECTATOR_MAX_FRAME_BYTES", 2 * 1024 * 1024)
# A present spectator with no live connection for this long loses their seat.
SPECTATOR_PRESENCE_TIMEOUT = env_int("SPECTATOR_PRESENCE_TIMEOUT", 90)
# Per-connection send buffer: past this many queued messages a spectator is too far behind.
SPECTATOR_MAX_BUFFERED_MESSAGES = env_int("SPECTATOR_MAX_BUFFERED_MESSAGES", 5000)
# Seconds between two spectator lists sent to a room: a crowd joining at once gets the latest list
# a few times a second, not one per join (which is n^2 messages for n joiners).
SPECTATOR_LIST_INTERVAL = env_float("SPECTATOR_LIST_INTERVAL", 0.5)
# A server process runs a full garbage collection this often (seconds; 0: only CPython's own).
SPECTATOR_GC_FULL_INTERVAL = env_float("SPECTATOR_GC_FULL_INTERVAL", 300)
# Metric points of recent history sent in a room's snapshot on connect.
SPECTATOR_SNAPSHOT_POINTS = env_int("SPECTATOR_SNAPSHOT_POINTS", 500)
# Recorded episodes (decisions and frames for replay): one append-only file per episode under
# this folder (chosen over database rows by benchmarks/recording.py). A session's own recording
# settings start from these defaults: mode all | every_nth | best_worst | off, bytes and age kept.
SPECTATOR_RECORDINGS_DIR = Path(os.environ.get("SPECTATOR_RECORDINGS_DIR", MEDIA_ROOT / "recordings"))
SPECTATOR_RECORDING_MODE = os.environ.get("SPECTATOR_RECORDING_MODE", "all")
SPECTATOR_RECORDING_MAX_BYTES = env_int("SPECTATOR_RECORDING_MAX_BYTES", 256 * 1024 * 1024)
SPECTATOR_RECORDING_MAX_AGE_HOURS = env_float("SPECTATOR_RECORDING_MAX_AGE_HOURS", 7 * 24)
# thread: ingest hands records to a per-process writer thread (never waits on disk or the
# database); inline: the ingest request writes them itself before it answers.
SPECTATOR_RECORDING_WRITER = os.environ.get("SPECTATOR_RECORDING_WRITER", "thread")

# /metrics: direct connections from these addresses or networks, or the bearer token, may read it.
SPECTATOR_METRICS_ALLOW = env_list("SPECTATOR_METRICS_ALLOW", "127.0.0.1,::1")
SPECTATOR_METRICS_TOKEN = os.environ.get("SPECTATOR_METRICS_TOKEN", "")

# LOG_FORMAT=json: one JSON object a line (with request, room and training-session ids); else plain.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "spectator_site.logging_context.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
