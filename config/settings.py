"""CrowdNet settings: the only settings module, everything from environment variables.

With no environment set, CrowdNet runs embedded: SQLite in WAL mode, Celery over kombu's
filesystem transport, a file cache, and media on local disk, all under ``var/``. Setting
``DATABASE_URL`` and ``REDIS_URL`` moves it onto PostgreSQL and Redis.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# --- typed environment helpers --------------------------------------------------------------


def env_str(name: str, default: str) -> str:
    """The variable's value, or ``default`` when unset or empty."""
    value = os.environ.get(name, "")
    return value if value else default


def env_bool(name: str, default: bool) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (any case)."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """An integer variable no smaller than ``minimum``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """A float variable no smaller than ``minimum``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma-separated list of CIDR networks, e.g. ``10.0.0.0/8,127.0.0.1/32``."""
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not a CIDR network.") from None
    return tuple(networks)


# --- core -----------------------------------------------------------------------------------

VAR_DIR = Path(env_str("CROWDNET_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, or a random key made once per install and kept in var/ (never shipped)."""
    configured = os.environ.get("DJANGO_SECRET_KEY", "")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        tmp = key_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        os.replace(tmp, key_file)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.admin_site.CrowdNetAdminConfig",  # django.contrib.admin with a limited login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "csp",
    "jobs",
    "labeling",
    "datasets",
    "training",
    "campaigns",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.SettingsPolicyCSPMiddleware",
]

ROOT_URLCONF = "config.urls"
# The hash-band indexes INCLUDE extra columns for index-only scans on PostgreSQL; SQLite builds
# them as plain indexes, which is all it needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "labeling.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------


def _plan_cache_mode(mode: str, name: str) -> str:
    """``mode``, read from the environment variable ``name``, if PostgreSQL knows it."""
    if mode not in ("force_custom_plan", "auto", "force_generic_plan"):
        raise ImproperlyConfigured(
            f"{name} must be force_custom_plan, auto or force_generic_plan, not {mode!r}."
        )
    return mode


DATABASE_URL = os.environ.get("DATABASE_URL", "")
# The plan mode the task engine's transactions set for themselves (SET LOCAL), where it
# differs from the connections' (None: theirs).
CROWDNET_DB_ENGINE_PLAN_CACHE_MODE: str | None = None
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Server-side binding lets psycopg prepare a statement after a few runs, so the task
        # engine's pool queries are parsed once per connection instead of on every request.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        # JIT compilation pays off for long analytical queries, not for the task engine's
        # millisecond statements: a grid pick whose cost PostgreSQL overestimated was compiled
        # for 0.9 s on every call (docs/benchmarks.md). CROWDNET_DB_JIT=true turns it back on.
        server_options = [] if env_bool("CROWDNET_DB_JIT", False) else ["-c jit=off"]
        options["server_side_binding"] = env_bool("CROWDNET_DB_SERVER_SIDE_BINDING", True)
        if options["server_side_binding"]:
            # Django turns psycopg's preparing off (prepare_threshold None) unless asked: a
            # statement run this many times on a connection is prepared (parsed once); 0
            # turns it off. PostgreSQL then keeps a generic plan where it costs no more than
            # the custom ones (plan_cache_mode auto): planning is most of the task engine's
            # database time, and a cached plan is made again whenever ANALYZE (autovacuum's)
            # updates a table it reads. Without autovacuum a plan made while the crowd's tables
            # were small keeps its scans as they grow (bench/crowd_load.py read 2.6x the rows
            # per answer): CROWDNET_DB_PLAN_CACHE_MODE=force_custom_plan plans every run for
            # its values (docs/benchmarks.md, "Generic plans, with the statistics kept").
            threshold = env_int("CROWDNET_DB_PREPARE_THRESHOLD", 5)
            options["prepare_threshold"] = threshold or None
            plan_mode = _plan_cache_mode(
                env_str("CROWDNET_DB_PLAN_CACHE_MODE", "auto"), "CROWDNET_DB_PLAN_CACHE_MODE"
            )
            server_options.append(f"-c plan_cache_mode={plan_mode}")
            # The task engine's transactions (a next, an answer) take generic plans: its
            # statements inline the values whose skew matters, the lease costs 10-20x more to
            # plan than to run, and PostgreSQL's own choice (auto) kept planning it on every
            # call (docs/benchmarks.md, "The task engine on generic plans").
            engine_mode = _plan_cache_mode(
                env_str("CROWDNET_DB_ENGINE_PLAN_CACHE_MODE", "force_generic_plan"),
                "CROWDNET_DB_ENGINE_PLAN_CACHE_MODE",
            )
            if engine_mode != plan_mode:
                CROWDNET_DB_ENGINE_PLAN_CACHE_MODE = engine_mode
        if server_options:
            options["options"] = " ".join(server_options)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "crowdnet.sqlite3",
            "OPTIONS": {
                # WAL lets the web process read while a worker writes; IMMEDIATE transactions
                # take the write lock up front instead of failing with "database is locked".
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, Celery --------------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
# The cache may live in another Redis database than the broker (the test suite's does, so that
# clearing the cache between tests never flushes queued Celery messages).
REDIS_CACHE_URL = os.environ.get("REDIS_CACHE_URL", "") or REDIS_URL
# While Redis is unreachable the cache counts limits in each process's memory (config/cache.py)
# and tries Redis again this often.
CROWDNET_CACHE_RETRY_SECONDS = env_int("CROWDNET_CACHE_RETRY_SECONDS", 5, minimum=1)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": REDIS_CACHE_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    _broker_dir = VAR_DIR / "celery" / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery" / "results").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery' / 'results'}"

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Only the long training job goes to the training worker; its housekeeping (stale runs, the
# automatic trigger) must run while that worker is busy.
CELERY_TASK_ROUTES = {
    "training.tasks.run_train": {"queue": "training"},
    "training.tasks.candidates_score": {"queue": "training"},
    "training.tasks.evaluation_rescore": {"queue": "training"},
    "training.tasks.evaluations_catch_up": {"queue": "training"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    "sweep-orphan-media": {"task": "labeling.tasks.media_orphans_sweep", "schedule": 6 * 3600.0},
    "expire-exports": {"task": "datasets.tasks.exports_expire", "schedule": 3600.0},
    "training-auto": {"task": "training.tasks.training_auto", "schedule": 300.0},
    "jobs-sweep": {
        "task": "jobs.tasks.jobs_sweep",
        "schedule": env_float("CROWDNET_JOBS_SWEEP_SECONDS", 60.0, minimum=1.0),
    },
    # scores a lost re-scoring message or a killed worker left missing
    "evaluation-catch-up": {"task": "training.tasks.evaluations_catch_up", "schedule": 900.0},
    # what answers' and pauses' commit hooks left undone when a process was killed
    "commit-hooks-sweep": {"task": "labeling.tasks.commit_hooks_sweep", "schedule": 300.0},
    "consensus-reaggregate": {
        "task": "labeling.tasks.consensus_reaggregate",
        "schedule": env_float("CROWDNET_CONSENSUS_EVERY_SECONDS", 900.0, minimum=10.0),
    },
}

# --- auth, passwords ------------------------------------------------------------------------

# Every login (page, admin, API token) goes through the failed-login limits.
AUTHENTICATION_BACKENDS = ["labeling.authentication.ThrottledModelBackend"]
# Trusted reverse proxies in front of the app, each appending to X-Forwarded-For. 0: the client
# is REMOTE_ADDR and X-Forwarded-For is ignored (anyone can write it). Throttles and login
# limits key on the address this gives (labeling.throttle.client_address).
CROWDNET_NUM_PROXIES = env_int("CROWDNET_NUM_PROXIES", 0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- i18n, static, media --------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env_str("CROWDNET_MEDIA_ROOT", str(VAR_DIR / "media")))
# Every file more than one host reads goes through one of three stores (config.file_stores):
# media (images), checkpoints and export archives. `filesystem` keeps them under these folders
# (a volume every host mounts); `s3` puts them in one bucket, each under its own prefix, with
# the credentials boto3 finds itself (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a role...).
CROWDNET_CHECKPOINT_DIR = Path(env_str("CROWDNET_CHECKPOINT_DIR", str(VAR_DIR / "checkpoints")))
CROWDNET_EXPORT_DIR = Path(env_str("CROWDNET_EXPORT_DIR", str(VAR_DIR / "exports")))
CROWDNET_STORAGE = env_str("CROWDNET_STORAGE", "filesystem").strip().lower()
CROWDNET_S3_BUCKET = env_str("CROWDNET_S3_BUCKET", "")
CROWDNET_S3_ENDPOINT_URL = env_str("CROWDNET_S3_ENDPOINT_URL", "")
CROWDNET_S3_REGION = env_str("CROWDNET_S3_REGION", "")


def _stores() -> dict[str, dict[str, Any]]:
    """STORAGES' entries for media ("default"), checkpoints and exports."""
    folders = {"default": MEDIA_ROOT, "checkpoints": CROWDNET_CHECKPOINT_DIR}
    folders["exports"] = CROWDNET_EXPORT_DIR
    if CROWDNET_STORAGE == "filesystem":
        stores: dict[str, dict[str, Any]] = {
            alias: {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(folder)},
            }
            for alias, folder in folders.items()
        }
    elif CROWDNET_STORAGE == "s3":
        if not CROWDNET_S3_BUCKET:
            raise ImproperlyConfigured("CROWDNET_STORAGE=s3 needs CROWDNET_S3_BUCKET.")
        if CROWDNET_S3_ENDPOINT_URL and not CROWDNET_S3_ENDPOINT_URL.startswith(
            ("http://", "https://")
        ):
            raise ImproperlyConfigured(
                f"CROWDNET_S3_ENDPOINT_URL={CROWDNET_S3_ENDPOINT_URL!r} is not an http(s) URL."
            )
        stores = {
            alias: {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": CROWDNET_S3_BUCKET,
                    "endpoint_url": CROWDNET_S3_ENDPOINT_URL or None,
                    "region_name": CROWDNET_S3_REGION or None,
                    "location": prefix,
                    "default_acl": None,  # the bucket's policy decides; objects stay private
                    "file_overwrite": True,  # names are content hashes or job outputs
                    # an object read (a download, a checkpoint) spools to a temporary file past
                    # this; django-storages' default, 0, keeps the whole object in memory
                    "max_memory_size": 8 * 2**20,
                },
            }
            for alias, prefix in (
                ("default", "media"),
                ("checkpoints", "checkpoints"),
                ("exports", "exports"),
            )
        }
    else:
        raise ImproperlyConfigured(
            f"CROWDNET_STORAGE={CROWDNET_STORAGE!r}: use filesystem (the default) or s3."
        )
    # The older setting: any storage class for media alone, configured by its own settings.
    backend = os.environ.get("CROWDNET_STORAGE_BACKEND", "")
    if backend:
        if CROWDNET_STORAGE != "filesystem":
            raise ImproperlyConfigured(
                "Set CROWDNET_STORAGE or the older CROWDNET_STORAGE_BACKEND, not both."
            )
        stores["default"] = {"BACKEND": backend}
    return stores


STORAGES = {
    **_stores(),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("CROWDNET_MAX_FILES_PER_UPLOAD", 500, minimum=1)

# --- security headers -----------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
# HSTS: browsers that once saw the site over HTTPS refuse plain HTTP for this many seconds.
# On by default (a year) once HTTPS is enforced; subdomains only when asked for, since they
# may still serve plain HTTP.
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if SECURE_SSL_REDIRECT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- REST framework, OpenAPI ----------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so that a request with no credentials gets 401 with WWW-Authenticate.
        "labeling.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "labeling.api.negotiation.JSONFirstNegotiation",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "labeling.api.throttling.UserRateThrottle",
        "labeling.api.throttling.AnonRateThrottle",
    ],
    "NUM_PROXIES": CROWDNET_NUM_PROXIES,
    "DEFAULT_THROTTLE_RATES": {
        "tasks": env_str("CROWDNET_THROTTLE_TASKS", "600/min"),
        "tasks_ip": env_str("CROWDNET_THROTTLE_TASKS_IP", "6000/min"),
        "user": env_str("CROWDNET_THROTTLE_USER", "3000/min"),
        "anon": env_str("CROWDNET_THROTTLE_ANON", "30/min"),
        "imports": env_str("CROWDNET_THROTTLE_IMPORTS", "60/min"),
        "login": env_str("CROWDNET_THROTTLE_LOGIN", "20/min"),
        "campaign": env_str("CROWDNET_THROTTLE_CAMPAIGN", "60/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CrowdNet API",
    "DESCRIPTION": "Crowd labeling and closed-loop transfer learning.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TrainingRunStatusEnum": "training.models.TrainingRun.Status",
        "TrainingRunTriggerEnum": "training.models.TrainingRun.Trigger",
        "ConsensusRunTriggerEnum": "labeling.models.ConsensusRun.Trigger",
        "KindEnum": "labeling.models.TaskKind",
        "StateEnum": "labeling.models.Candidate.State",
        "CampaignStateEnum": "campaigns.models.Campaign.State",
        "AssignmentStateEnum": "campaigns.models.Assignment.State",
        "LedgerKindEnum": "campaigns.models.LedgerEntry.Kind",
    },
}

# --- CrowdNet -------------------------------------------------------------------------------

CROWDNET_OPEN_SIGNUP = env_bool("CROWDNET_OPEN_SIGNUP", False)
CROWDNET_INVITE_DAYS = env_int("CROWDNET_INVITE_DAYS", 7, minimum=1)

# Campaigns: turkSubmitTo may name www.mturk.com or workersandbox.mturk.com, and these
# origins too (scheme://host[:port], comma-separated): a local stand-in in tests.
CROWDNET_CAMPAIGN_SUBMIT_ORIGINS = env_list("CROWDNET_CAMPAIGN_SUBMIT_ORIGINS", [])

# Ingestion limits
CROWDNET_MAX_IMAGE_BYTES = env_int("CROWDNET_MAX_IMAGE_BYTES", 25 * 1024 * 1024, minimum=1)
CROWDNET_MAX_IMAGE_PIXELS = env_int("CROWDNET_MAX_IMAGE_PIXELS", 40_000_000, minimum=1)
CROWDNET_ARCHIVE_MAX_BYTES = env_int("CROWDNET_ARCHIVE_MAX_BYTES", 1024 * 1024 * 1024, minimum=1)
CROWDNET_ARCHIVE_MAX_ENTRIES = env_int("CROWDNET_ARCHIVE_MAX_ENTRIES", 20_000, minimum=1)
CROWDNET_ARCHIVE_MAX_TOTAL_BYTES = env_int(
    "CROWDNET_ARCHIVE_MAX_TOTAL_BYTES", 4 * 1024 * 1024 * 1024, minimum=1
)
CROWDNET_ARCHIVE_MAX_RATIO = env_float("CROWDNET_ARCHIVE_MAX_RATIO", 100.0, minimum=1.0)
CROWDNET_THUMB_SIZE = env_int("CROWDNET_THUMB_SIZE", 256, minimum=16)
CROWDNET_TRAIN_SIZE = env_int("CROWDNET_TRAIN_SIZE", 256, minimum=16)
# Stored originals lose GPS and other location metadata (EXIF GPS, XMP, IPTC) unless this is on.
CROWDNET_KEEP_GPS = env_bool("CROWDNET_KEEP_GPS", False)
# Near-duplicates: perceptual hashes at most this many bits apart (0-4; the index is built for 4).
CROWDNET_NEAR_DUP_DISTANCE = env_int("CROWDNET_NEAR_DUP_DISTANCE", 4, minimum=0)
if CROWDNET_NEAR_DUP_DISTANCE > 4:
    raise ImproperlyConfigured(
        "CROWDNET_NEAR_DUP_DISTANCE must be 0-4: the hash index has 5 bands."
    )

# Scraping
CROWDNET_FETCH_TIMEOUT_S = env_float("CROWDNET_FETCH_TIMEOUT_S", 10.0, minimum=0.1)
CROWDNET_FETCH_MAX_BYTES = env_int("CROWDNET_FETCH_MAX_BYTES", 20 * 1024 * 1024, minimum=1)
CROWDNET_FETCH_MAX_REDIRECTS = env_int("CROWDNET_FETCH_MAX_REDIRECTS", 5)
CROWDNET_FETCH_CONCURRENCY = env_int("CROWDNET_FETCH_CONCURRENCY", 8, minimum=1)
CROWDNET_FETCH_PER_HOST = env_int("CROWDNET_FETCH_PER_HOST", 2, minimum=1)
CROWDNET_FETCH_PER_HOST_DELAY_S = env_float("CROWDNET_FETCH_PER_HOST_DELAY_S", 0.0)
CROWDNET_FETCH_MAX_URLS = env_int("CROWDNET_FETCH_MAX_URLS", 2000, minimum=1)
# Addresses that are private or loopback but may be fetched anyway (tests, intranets).
CROWDNET_FETCH_ALLOW_NETWORKS = env_networks("CROWDNET_FETCH_ALLOW_NETWORKS")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
}

# Micro-tasks
CROWDNET_LEASE_SECONDS = env_int("CROWDNET_LEASE_SECONDS", 180, minimum=10)
CROWDNET_MAX_OPEN_TASKS = env_int("CROWDNET_MAX_OPEN_TASKS", 2, minimum=1)
CROWDNET_VOTES_PER_ITEM = env_int("CROWDNET_VOTES_PER_ITEM", 3, minimum=1)
CROWDNET_GOLD_RATE = env_float("CROWDNET_GOLD_RATE", 0.1)
# Where a category has no curated gold item left for a worker, items the crowd decided with
# at least this confidence serve as its control items (their known answer is the decision).
CROWDNET_CONTROL_CONFIDENCE = env_float("CROWDNET_CONTROL_CONFIDENCE", 0.99)
CROWDNET_GRID_SIZE = env_int("CROWDNET_GRID_SIZE", 9, minimum=2)
CROWDNET_BOX_VERIFY_VOTES = env_int("CROWDNET_BOX_VERIFY_VOTES", 1, minimum=1)
# Image links in the task API are signed for the worker and good for this many seconds.
CROWDNET_IMAGE_URL_SECONDS = env_int("CROWDNET_IMAGE_URL_SECONDS", 600, minimum=10)
# "None present" on an image the crowd accepted contradicts the label: it stands only when
# this many distinct workers say so and nobody drew a box; after CROWDNET_BOX_DRAW_CAP
# workers drew (or found nothing) without settling it, the image goes to the review queue.
CROWDNET_BOX_NONE_VOTES = env_int("CROWDNET_BOX_NONE_VOTES", 2, minimum=1)
CROWDNET_BOX_DRAW_CAP = env_int("CROWDNET_BOX_DRAW_CAP", 4, minimum=1)
CROWDNET_MAX_BOXES = env_int("CROWDNET_MAX_BOXES", 50, minimum=1)
CROWDNET_MIN_BOX_SIDE = env_float("CROWDNET_MIN_BOX_SIDE", 2.0)
# Quality gates: sequential tests (labeling/crowd/gates.py). A worker whose accuracy on control
# items (a grid counts per cell) is at least CROWDNET_GATE_GOLD_BAR, or who answers under
# CROWDNET_GATE_MIN_SECONDS_PER_ITEM s per image in at most CROWDNET_GATE_FAST_HONEST_RATE of
# tasks, is ever paused by each gate with a chance of at most CROWDNET_GATE_FALSE_PAUSE.
CROWDNET_GATE_MIN_SECONDS_PER_ITEM = env_float("CROWDNET_GATE_MIN_SECONDS_PER_ITEM", 0.4)
CROWDNET_GATE_FAST_HONEST_RATE = env_float("CROWDNET_GATE_FAST_HONEST_RATE", 0.1)
# ... tested against a worker who clicks through this share of tasks.
CROWDNET_GATE_FAST_BOT_RATE = env_float("CROWDNET_GATE_FAST_BOT_RATE", 0.5)
CROWDNET_GATE_GOLD_BAR = env_float("CROWDNET_GATE_GOLD_BAR", 0.8)
# ... tested against a worker who answers at random (right this often).
CROWDNET_GATE_GOLD_CHANCE = env_float("CROWDNET_GATE_GOLD_CHANCE", 0.5)
CROWDNET_GATE_FALSE_PAUSE = env_float("CROWDNET_GATE_FALSE_PAUSE", 0.01)
# The peer-agreement gate takes the crowd's call on an item (its other votes' P(yes)) as at most
# this sure: the rest is room for peers who are wrong more often than their P says.
CROWDNET_GATE_PEER_TRUST = env_float("CROWDNET_GATE_PEER_TRUST", 0.95)
# ... and pauses a worker at the bar with a chance of at most this: it tests the same bar as the
# control items, so the two share the 1 % (the control tests' exact worst case is 0.77 %).
CROWDNET_GATE_PEER_FALSE_PAUSE = env_float("CROWDNET_GATE_PEER_FALSE_PAUSE", 0.003)
# Off: its evidence is still kept, for curators, but it pauses nobody. For a crowd suspected to
# be captured by colluders who answer the control items right: there it pauses the honest
# workers who contradict them (docs/benchmarks.md, "Peer-agreement gate reviewed").
CROWDNET_GATE_PEER_PAUSES = env_bool("CROWDNET_GATE_PEER_PAUSES", True)
# The contested-calls gate: a curator's decision scores every label vote cast on the item
# before it (blind checks: nobody could tell it would be checked), and a worker at the bar on
# them is paused with a chance of at most this (the control and peer tests' 0.97 % and this
# one's 0.015 % stay within the 1 %: bench/gates.py).
CROWDNET_GATE_BLIND_FALSE_PAUSE = env_float("CROWDNET_GATE_BLIND_FALSE_PAUSE", 0.0003)
if not (
    0 < CROWDNET_GATE_FAST_HONEST_RATE < CROWDNET_GATE_FAST_BOT_RATE < 1
    and 0 < CROWDNET_GATE_GOLD_CHANCE < CROWDNET_GATE_GOLD_BAR < 1
    and 0 < CROWDNET_GATE_FALSE_PAUSE < 1
    and 0.5 < CROWDNET_GATE_PEER_TRUST < 1
    and 0 < CROWDNET_GATE_PEER_FALSE_PAUSE < 1
    and 0 < CROWDNET_GATE_BLIND_FALSE_PAUSE < 1
):
    raise ImproperlyConfigured(
        "Quality gates need 0 < CROWDNET_GATE_FAST_HONEST_RATE < CROWDNET_GATE_FAST_BOT_RATE < 1, "
        "0 < CROWDNET_GATE_GOLD_CHANCE < CROWDNET_GATE_GOLD_BAR < 1, "
        "0 < CROWDNET_GATE_FALSE_PAUSE < 1, 0.5 < CROWDNET_GATE_PEER_TRUST < 1 and "
        "0 < CROWDNET_GATE_PEER_FALSE_PAUSE < 1, 0 < CROWDNET_GATE_BLIND_FALSE_PAUSE < 1."
    )
# Workers whose Dawid-Skene spammer score stays under this after enough label votes are paused.
CROWDNET_GATE_SPAMMER_SCORE = env_float("CROWDNET_GATE_SPAMMER_SCORE", 0.05)
CROWDNET_GATE_SPAMMER_MIN_VOTES = env_int("CROWDNET_GATE_SPAMMER_MIN_VOTES", 30, minimum=1)
# ... of which at least this many (in expectation) on items of each true class.
CROWDNET_GATE_SPAMMER_MIN_PER_CLASS = env_float("CROWDNET_GATE_SPAMMER_MIN_PER_CLASS", 10.0)
# ... and so are workers whose Dawid-Skene accuracy is below this (they answer against the crowd).
CROWDNET_GATE_EM_MIN_ACCURACY = env_float("CROWDNET_GATE_EM_MIN_ACCURACY", 0.5)

# Consensus: an item is decided once P(yes) or P(no) reaches the threshold; at the vote cap an
# undecided item goes to the curators' review queue. "adaptive" weighs each vote by the worker's
# reliability; "imagenet" uses the category's confidence table when one was fitted.
CROWDNET_CONSENSUS_RULE = env_str("CROWDNET_CONSENSUS_RULE", "adaptive")
if CROWDNET_CONSENSUS_RULE not in ("adaptive", "imagenet"):
    raise ImproperlyConfigured("CROWDNET_CONSENSUS_RULE must be adaptive or imagenet.")
CROWDNET_CONSENSUS_THRESHOLD = env_float("CROWDNET_CONSENSUS_THRESHOLD", 0.995, minimum=0.5)
CROWDNET_CONSENSUS_VOTE_CAP = env_int("CROWDNET_CONSENSUS_VOTE_CAP", 10, minimum=1)
CROWDNET_CONSENSUS_PRIOR = env_float("CROWDNET_CONSENSUS_PRIOR", 0.5)
# How long a web process reuses a category's counted decisions (the learnt prior's counts,
# labeling.services.category_priors.counts_remembered) before reading them again; 0: every answer.
CROWDNET_PRIOR_COUNTS_SECONDS = env_float("CROWDNET_PRIOR_COUNTS_SECONDS", 30.0, minimum=0.0)
# Live worker estimate: a worker's control record counts as at most this many votes per class
# before his agreement with the crowd on decided items (labeling.consensus.live_coins).
CROWDNET_CONSENSUS_CONTROL_VOTES = env_float("CROWDNET_CONSENSUS_CONTROL_VOTES", 4.0, minimum=0.1)
# Dawid-Skene: K * (1 + smoothing) pseudo-votes per confusion row, along the crowd's pooled row
# (docs/benchmarks.md, crowd families); the confidence table: pseudo-items at the prior.
CROWDNET_CONSENSUS_SMOOTHING = env_float("CROWDNET_CONSENSUS_SMOOTHING", 1.0)
CROWDNET_BOX_IOU = env_float("CROWDNET_BOX_IOU", 0.5)

# Training: dataset versions, runs, the automatic retrain, active learning.
CROWDNET_TRAIN_VAL_SHARE = env_float("CROWDNET_TRAIN_VAL_SHARE", 0.2)
CROWDNET_TRAIN_MIN_PER_CLASS = env_int("CROWDNET_TRAIN_MIN_PER_CLASS", 5, minimum=1)
CROWDNET_TRAIN_AUTO_NEW_LABELS = env_int("CROWDNET_TRAIN_AUTO_NEW_LABELS", 200, minimum=1)
CROWDNET_TRAIN_AUTO_BACKBONE = env_str("CROWDNET_TRAIN_AUTO_BACKBONE", "efficientnet_lite0")
CROWDNET_TRAIN_AUTO_WEIGHTS = env_str("CROWDNET_TRAIN_AUTO_WEIGHTS", "imagenet")
CROWDNET_TRAIN_AUTO_MODE = env_str("CROWDNET_TRAIN_AUTO_MODE", "feature_extraction")
# Every run's epochs unless it names its own: scheduled runs, the Training form, the API and
# `manage.py train` alike. Early stopping (patience 3) ends most runs sooner, and the default
# feature_extraction run trains its head on cached features: up to 30 epochs of it took 0.2 s
# on 2,000 images (docs/benchmarks.md, "Retrain after +10 % labels"), so 30 costs the demo
# nothing next to embedding. CROWDNET_TRAIN_AUTO_EPOCHS: the older name, read when this is unset.
CROWDNET_TRAIN_EPOCHS = env_int(
    "CROWDNET_TRAIN_EPOCHS", env_int("CROWDNET_TRAIN_AUTO_EPOCHS", 30, minimum=1), minimum=1
)
CROWDNET_TRAIN_IMAGE_SIZE = env_int("CROWDNET_TRAIN_IMAGE_SIZE", 96, minimum=16)
CROWDNET_TRAIN_HEARTBEAT_STALE_SECONDS = env_int(
    "CROWDNET_TRAIN_HEARTBEAT_STALE_SECONDS", 600, minimum=10
)
CROWDNET_TRAIN_MAX_ATTEMPTS = env_int("CROWDNET_TRAIN_MAX_ATTEMPTS", 2, minimum=1)
# Background jobs (imports, exports, training and consensus runs; docs/architecture.md): a
# running attempt beats every CROWDNET_JOBS_HEARTBEAT_SECONDS; the sweep requeues a job silent
# past its kind's stale period (training: CROWDNET_TRAIN_HEARTBEAT_STALE_SECONDS) while it has
# attempts left (training: CROWDNET_TRAIN_MAX_ATTEMPTS), then fails it, and sends a queued
# job's message again when it was sent more than CROWDNET_JOBS_RESEND_GRACE_SECONDS ago.
CROWDNET_JOBS_HEARTBEAT_SECONDS = env_float("CROWDNET_JOBS_HEARTBEAT_SECONDS", 30.0, minimum=0.1)
CROWDNET_JOBS_RESEND_GRACE_SECONDS = env_int("CROWDNET_JOBS_RESEND_GRACE_SECONDS", 300, minimum=0)
CROWDNET_JOBS_MAX_ATTEMPTS = env_int("CROWDNET_JOBS_MAX_ATTEMPTS", 2, minimum=1)
CROWDNET_IMPORT_STALE_SECONDS = env_int("CROWDNET_IMPORT_STALE_SECONDS", 600, minimum=1)
CROWDNET_EXPORT_STALE_SECONDS = env_int("CROWDNET_EXPORT_STALE_SECONDS", 600, minimum=1)
CROWDNET_CONSENSUS_STALE_SECONDS = env_int("CROWDNET_CONSENSUS_STALE_SECONDS", 600, minimum=1)
CROWDNET_TRAIN_TIME_LIMIT = env_int("CROWDNET_TRAIN_TIME_LIMIT", 4 * 3600, minimum=60)
CROWDNET_TRAIN_DEVICE = env_str("CROWDNET_TRAIN_DEVICE", "auto")
# CPU threads for training (0: torch's default, one per core). On a small shared machine 1 is
# often faster: threads that wait on each other's cores cost more than they give.
CROWDNET_TRAIN_THREADS = env_int("CROWDNET_TRAIN_THREADS", 0)
# Processes a run that trains through the trunk (fine_tune, full) trains in, data-parallel
# (DistributedDataParallel: NCCL, one per GPU; gloo on the CPU). 0: one per visible GPU.
CROWDNET_TRAIN_PROCESSES = env_int("CROWDNET_TRAIN_PROCESSES", 1, minimum=0)
# Runs that train through the trunk (fine_tune, full) decode each image once and keep its
# uint8 pixels (on the GPU when training there) while they fit in this many MiB (96 px: 27 KiB
# an image, 224 px: 147 KiB); past it, images are decoded again every epoch. The first pass
# decodes in this many loader processes (0: in line with training).
CROWDNET_TRAIN_DECODED_MIB = env_int("CROWDNET_TRAIN_DECODED_MIB", 4096, minimum=0)
CROWDNET_TRAIN_LOADER_WORKERS = env_int("CROWDNET_TRAIN_LOADER_WORKERS", 0, minimum=0)
# After a finished run (any trigger): decide whether it becomes the current model (the rules
# below, CROWDNET_PROMOTE_*), then score the open candidates with it.
CROWDNET_TRAIN_AUTO_PROMOTE = env_bool("CROWDNET_TRAIN_AUTO_PROMOTE", True)
# Evaluation sets (docs/evaluation.md): CROWDNET_EVAL_SHARE of images, chosen by their sha256
# (bits that the train/val split does not use), are reserved: no dataset version takes them, and
# the frozen evaluation set of a category set is drawn from their accepted labels. A reserved
# image's label counts only after extra scrutiny: a curator's decision (an override or a control
# answer), or CROWDNET_EVAL_MIN_VOTES votes (reserved images are asked that many) and a
# consensus confidence of CROWDNET_EVAL_MIN_CONFIDENCE. A set needs CROWDNET_EVAL_MIN_PER_CLASS
# images per class; a new evaluation version re-scores the current model and the
# CROWDNET_EVAL_RESCORE_RUNS most recent runs of its categories.
CROWDNET_EVAL_SHARE = env_float("CROWDNET_EVAL_SHARE", 0.1)
if CROWDNET_EVAL_SHARE >= 0.5:
    raise ImproperlyConfigured("CROWDNET_EVAL_SHARE must be below 0.5.")
CROWDNET_EVAL_MIN_PER_CLASS = env_int("CROWDNET_EVAL_MIN_PER_CLASS", 10, minimum=1)
CROWDNET_EVAL_MIN_VOTES = env_int("CROWDNET_EVAL_MIN_VOTES", 5, minimum=1)
CROWDNET_EVAL_MIN_CONFIDENCE = env_float("CROWDNET_EVAL_MIN_CONFIDENCE", 0.999, minimum=0.5)
CROWDNET_EVAL_RESCORE_RUNS = env_int("CROWDNET_EVAL_RESCORE_RUNS", 10, minimum=0)
# Promotion (every finished run, whatever started it): the candidate and the current model on
# the same evaluation images; promoted when its top-1 error is lower by at least
# CROWDNET_PROMOTE_MARGIN percentage points AND McNemar's exact one-sided test on the images
# where the two disagree gives p <= CROWDNET_PROMOTE_ALPHA. 0.25 rather than 0.05: on a set of
# ~200 images two good models differ on a handful of images (5 against 1 gives p = 0.11), so a
# strict 0.05 would keep nearly every better model out; what matters is that a model is never
# promoted while it is worse on the same images, which the error comparison already guarantees,
# and a tie (b = c) gives p >= 0.5, so it never promotes either.
CROWDNET_PROMOTE_MARGIN = env_float("CROWDNET_PROMOTE_MARGIN", 0.0)
CROWDNET_PROMOTE_ALPHA = env_float("CROWDNET_PROMOTE_ALPHA", 0.25)
if CROWDNET_PROMOTE_ALPHA > 1.0:
    raise ImproperlyConfigured("CROWDNET_PROMOTE_ALPHA must be between 0 and 1.")
# The review queue also lists decided items the current model contradicts this strongly
# (accepted while it gives P(yes) <= margin, rejected while it gives >= 1 - margin).
CROWDNET_REVIEW_MODEL_MARGIN = env_float("CROWDNET_REVIEW_MODEL_MARGIN", 0.2)
# Accepted images wanted per category where it sets no target of its own (progress pages).
CROWDNET_CATEGORY_TARGET = env_int("CROWDNET_CATEGORY_TARGET", 1000, minimum=1)
# Dataset exports: archives in the exports store, kept this many hours; a selection of
# at most CROWDNET_EXPORT_DIRECT_MAX images may also stream straight to the browser.
CROWDNET_EXPORT_RETENTION_HOURS = env_int("CROWDNET_EXPORT_RETENTION_HOURS", 72, minimum=1)
# The largest annotation file (COCO JSON, VOC XML...) an annotation import reads.
CROWDNET_IMPORT_MAX_ANNOTATION_BYTES = env_int(
    "CROWDNET_IMPORT_MAX_ANNOTATION_BYTES", 200 * 2**20, minimum=1024
)
CROWDNET_EXPORT_DIRECT_MAX = env_int("CROWDNET_EXPORT_DIRECT_MAX", 2000, minimum=0)
# A per-host cache of backbone features that rebuilds itself (docs/architecture.md).
CROWDNET_EMBEDDING_DIR = Path(env_str("CROWDNET_EMBEDDING_DIR", str(VAR_DIR / "embeddings")))
# Active learning: the current model scores open candidates; the less sure it is, the sooner
# the crowd is asked. Where it is at least this sure and the crowd agrees, an item may be
# decided with fewer votes, never fewer than the floor (0 turns that off).
CROWDNET_AL_CONFIDENT = env_float("CROWDNET_AL_CONFIDENT", 0.0)
CROWDNET_AL_VOTE_FLOOR = env_int("CROWDNET_AL_VOTE_FLOOR", 2, minimum=1)
