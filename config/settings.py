"""Vigil settings, read from the environment.

With no variables set, Vigil runs on embedded defaults: SQLite under ``var/``, media under
``var/media/`` and Celery on kombu's filesystem transport under ``var/broker/``; ``var/local.env``
(written by ``make run``) fills in variables the environment lacks. Point it at real
servers with ``DATABASE_URL`` and ``CELERY_BROKER_URL``. See README.md for every variable.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VIGIL_VAR_DIR", str(BASE_DIR / "var"))).resolve()
# `make run` writes this file once (DJANGO_DEBUG and a generated DJANGO_SECRET_KEY), so manage.py
# commands typed in another terminal see the settings the running app has. Variables set in the
# environment win; a deployment without the file reads the environment only.
LOCAL_ENV_FILE = VAR_DIR / "local.env"
load_env_file(LOCAL_ENV_FILE)

DEBUG = env_bool("DJANGO_DEBUG", False)

_DEV_SECRET_KEY = "vigil-dev-only-insecure-key"
SECRET_KEY_MIN_LENGTH = 32
_SECRET_KEY_HOW = (
    f"at least {SECRET_KEY_MIN_LENGTH} characters, random, not starting with 'django-insecure' "
    "(python -c 'import secrets; print(secrets.token_urlsafe(50))' makes one)"
)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is not set. Production settings need a real secret key: {_SECRET_KEY_HOW}. "
            "For a development run, `make run` writes var/local.env with DJANGO_DEBUG=1, or set DJANGO_DEBUG=1."
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH or SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured(f"DJANGO_SECRET_KEY is too weak for production: use {_SECRET_KEY_HOW}.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "moderation",
    "reviews",
    "metrics",
    "feedback",
    "integrations",
    "hashes",
    "django_celery_beat",
    "pgtrigger",
    "axes",
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
    "axes.middleware.AxesMiddleware",
]

# Sign-in throttling (django-axes): after VIGIL_LOGIN_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is locked out for VIGIL_LOGIN_COOLOFF_MINUTES (HTTP 429).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("VIGIL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("VIGIL_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "accounts.context_processors.roles",
                "feedback.context_processors.routing_changes",
                "feedback.context_processors.scoring_health",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_SQLITE_PATH = VAR_DIR / "vigil.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{_SQLITE_PATH}"), conn_max_age=env_int("DB_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and worker write concurrently: WAL lets readers run beside the writer, and
    # IMMEDIATE transactions take the write lock up front instead of failing mid-transaction.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so that a real worker process sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-vigil.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(env_str("VIGIL_MEDIA_ROOT", str(VAR_DIR / "media")))
# No MEDIA_URL route: uploaded images are served only through authorised views. Stored images are
# reached only through Django's storage API, so the backend is configuration: the local filesystem
# (MEDIA_ROOT) or S3-compatible object storage through django-storages. See docs/storage.md.
VIGIL_STORAGE = env_str("VIGIL_STORAGE", "filesystem").strip().lower()
if VIGIL_STORAGE == "filesystem":
    _DEFAULT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif VIGIL_STORAGE == "s3":
    if not env_str("VIGIL_S3_BUCKET", ""):
        raise ImproperlyConfigured("VIGIL_STORAGE=s3 needs VIGIL_S3_BUCKET.")
    if bool(env_str("VIGIL_S3_ACCESS_KEY_ID", "")) != bool(env_str("VIGIL_S3_SECRET_ACCESS_KEY", "")):
        raise ImproperlyConfigured("Set both VIGIL_S3_ACCESS_KEY_ID and VIGIL_S3_SECRET_ACCESS_KEY, or neither.")
    _S3_OPTIONS = {
        "bucket_name": env_str("VIGIL_S3_BUCKET", ""),
        "location": env_str("VIGIL_S3_PREFIX", "").strip("/"),
        # Private objects, never overwritten, and no usable URL: images leave only through the
        # authorised views, so an accidental .url() yields an unsigned link the bucket refuses.
        "default_acl": None,
        "file_overwrite": False,
        "querystring_auth": False,
    }
    # Unset ones are left out: django-storages then reads AWS_S3_*/AWS_* variables, and boto3 its
    # own chain (AWS_PROFILE, ~/.aws, an instance or task role).
    for _option, _variable in (
        ("endpoint_url", "VIGIL_S3_ENDPOINT_URL"),
        ("region_name", "VIGIL_S3_REGION"),
        ("access_key", "VIGIL_S3_ACCESS_KEY_ID"),
        ("secret_key", "VIGIL_S3_SECRET_ACCESS_KEY"),
        ("addressing_style", "VIGIL_S3_ADDRESSING_STYLE"),
    ):
        if env_str(_variable, ""):
            _S3_OPTIONS[_option] = env_str(_variable, "")
    if _S3_OPTIONS.get("addressing_style", "auto") not in ("auto", "path", "virtual"):
        raise ImproperlyConfigured("VIGIL_S3_ADDRESSING_STYLE must be auto, path or virtual.")
    _DEFAULT_STORAGE = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _S3_OPTIONS}
else:
    raise ImproperlyConfigured(f"VIGIL_STORAGE={VIGIL_STORAGE!r} is not a storage (use filesystem or s3).")
STORAGES = {
    "default": _DEFAULT_STORAGE,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS only in production: redirect plain HTTP and tell browsers to stay on HTTPS (a year).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
# Subdomains too, and eligible for browsers' preload list: turn these off (DJANGO_HSTS_*=0) if other
# hosts under the domain are not HTTPS-only; `check --deploy` then says so.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", not DEBUG)
# Probes from inside the deployment speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (else SSL redirects would loop).
if env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "uploads": env_str("VIGIL_UPLOAD_THROTTLE", "6000/min"),
        "hash_match": env_str("VIGIL_HASH_MATCH_THROTTLE", "6000/min"),
    },
    "EXCEPTION_HANDLER": "moderation.apis.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Vigil API",
    "DESCRIPTION": "Submit images for moderation and read their outcome.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "REDOC_DIST": "SIDECAR",
}

# A shared cache makes the API upload throttle count across processes and machines; without
# one each process counts alone. VIGIL_CACHE_URL=redis://host:6379/1
VIGIL_CACHE_URL = env_str("VIGIL_CACHE_URL", "")
if VIGIL_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": VIGIL_CACHE_URL}}
elif VIGIL_CACHE_URL:
    raise ImproperlyConfigured("VIGIL_CACHE_URL must be a redis:// (or rediss://, unix://) URL.")

# --- Celery -------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": env_float("CELERY_POLLING_INTERVAL", 0.1),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged only after it ran, and re-queued if its worker dies: scoring is
# idempotent, so a redelivery is harmless while a lost message would strand an upload.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Tasks a worker runs at once (make run's worker: threads sharing one loaded model), by default one
# per core: with VIGIL_TORCH_THREADS unset each model call then gets one thread (moderation/worker.py).
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", len(os.sched_getaffinity(0)), minimum=1)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Periodic tasks live in the database (django-celery-beat), so admins edit schedules in the admin.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = False
# Retraining takes minutes to hours: it has its own queue and worker, so scoring never waits on it.
# Separate queues, so each kind of work gets its own workers (docs/deploy.md): scoring (CPU),
# URL fetching and webhook delivery (network waits), model training; periodic housekeeping stays
# on the default queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "moderation.tasks.score_upload": {"queue": "scoring"},
    "moderation.tasks.fetch_remote_upload": {"queue": "fetch"},
    "feedback.tasks.*": {"queue": "training"},
    "integrations.tasks.deliver_webhook": {"queue": "webhooks"},
}

# --- Vigil --------------------------------------------------------------------------------
VIGIL_MAX_UPLOAD_BYTES = env_int("VIGIL_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1)
VIGIL_MAX_IMAGE_PIXELS = env_int("VIGIL_MAX_IMAGE_PIXELS", 50_000_000, minimum=1)
VIGIL_MAX_IMAGE_FRAMES = env_int("VIGIL_MAX_IMAGE_FRAMES", 100, minimum=1)
# Videos (MP4, MOV, WebM, MKV): refused at intake beyond any of these.
VIGIL_MAX_VIDEO_BYTES = env_int("VIGIL_MAX_VIDEO_BYTES", 100 * 1024 * 1024, minimum=1)
VIGIL_MAX_VIDEO_SECONDS = env_int("VIGIL_MAX_VIDEO_SECONDS", 30 * 60, minimum=1)
VIGIL_MAX_VIDEO_PIXELS = env_int("VIGIL_MAX_VIDEO_PIXELS", 3840 * 2160, minimum=1)
VIGIL_MAX_VIDEO_FPS = env_int("VIGIL_MAX_VIDEO_FPS", 120, minimum=1)
# A video sampled more sparsely than this (seconds between regular samples; the interval grows
# with the length, 1 s up to about a minute) is never auto-approved: a human decides.
VIGIL_VIDEO_APPROVE_MAX_INTERVAL = env_float("VIGIL_VIDEO_APPROVE_MAX_INTERVAL", 2.0)
# ... unless the worker scanned it whole: decoded every frame and scored each changed scene
# (media/video.py). Done for videos of at most this many decoded megapixels (duration x fps x
# width x height / 1e6; 30 min of 480p at 25 fps is about 18,400), which bounds the decode time.
VIGIL_VIDEO_SCAN_MAX_MEGAPIXELS = env_int("VIGIL_VIDEO_SCAN_MAX_MEGAPIXELS", 60_000, minimum=0)
# Frames of an animated image the model scores: all up to this many, evenly sampled beyond it.
VIGIL_MAX_SCORED_FRAMES = env_int("VIGIL_MAX_SCORED_FRAMES", 32, minimum=1)
VIGIL_DISPLAY_MAX_SIDE = env_int("VIGIL_DISPLAY_MAX_SIDE", 1024, minimum=64)
# Remote URLs (POST {"url": ...}): fetched by a worker, never from a non-public address unless allowed.
VIGIL_FETCH_TIMEOUT_SECONDS = env_float("VIGIL_FETCH_TIMEOUT_SECONDS", 15.0)
VIGIL_FETCH_MAX_ATTEMPTS = env_int("VIGIL_FETCH_MAX_ATTEMPTS", 3, minimum=1)
VIGIL_FETCH_MAX_REDIRECTS = env_int("VIGIL_FETCH_MAX_REDIRECTS", 3, minimum=0)
# Private, loopback or link-local networks outbound requests may reach anyway (admins can add
# more under Integrations → Allowed networks), e.g. "10.1.2.0/24,127.0.0.1".
VIGIL_OUTBOUND_ALLOWED_NETWORKS = env_list("VIGIL_OUTBOUND_ALLOWED_NETWORKS", [])
for _network in VIGIL_OUTBOUND_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"VIGIL_OUTBOUND_ALLOWED_NETWORKS: {_network!r} is not an IP address or network."
        ) from None
VIGIL_WEBHOOK_TIMEOUT_SECONDS = env_float("VIGIL_WEBHOOK_TIMEOUT_SECONDS", 10.0)
VIGIL_WEBHOOK_MAX_ATTEMPTS = env_int("VIGIL_WEBHOOK_MAX_ATTEMPTS", 10, minimum=1)
VIGIL_WEBHOOK_BACKOFF_SECONDS = env_float("VIGIL_WEBHOOK_BACKOFF_SECONDS", 30.0)
VIGIL_WEBHOOK_BACKOFF_MAX_SECONDS = env_float("VIGIL_WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0)
VIGIL_WEBHOOK_ALLOW_HTTP = env_bool("VIGIL_WEBHOOK_ALLOW_HTTP", DEBUG)
VIGIL_SCORE_MAX_ATTEMPTS = env_int("VIGIL_SCORE_MAX_ATTEMPTS", 3, minimum=1)
# Micro-batching (moderation/services/scoring.py): a worker scoring a still image also takes up to
# this many in all of the still images already waiting, first attempts only, and runs the model on
# them in one call. Nothing waits for a batch to fill: a lone upload is scored at once. 1: off.
VIGIL_SCORING_BATCH_SIZE = env_int("VIGIL_SCORING_BATCH_SIZE", 8, minimum=1)
VIGIL_PENDING_SWEEP_AFTER_SECONDS = env_int("VIGIL_PENDING_SWEEP_AFTER_SECONDS", 300, minimum=10)
# Work leases (moderation/services/leases.py): a worker scoring or fetching an upload renews its
# lease every third of this; one silent for longer is presumed dead and the sweeper (every
# VIGIL_SWEEP_INTERVAL_SECONDS) sends the upload again. After VIGIL_SCORE_MAX_INTERRUPTIONS such
# deaths on one upload it goes to humans as failed, undecoded (a file that crashes the decoder).
VIGIL_SCORING_LEASE_SECONDS = env_int("VIGIL_SCORING_LEASE_SECONDS", 15, minimum=3)
VIGIL_SCORE_MAX_INTERRUPTIONS = env_int("VIGIL_SCORE_MAX_INTERRUPTIONS", 2, minimum=1)
# An attempt that holds its lease longer than this is presumed stuck: the lease is left to expire
# (the upload is sent again, an interruption), and a worker whose tasks run in its main process
# (make run's thread pool) exits for its supervisor to restart (moderation/services/leases.py).
VIGIL_SCORING_MAX_SECONDS = env_int("VIGIL_SCORING_MAX_SECONDS", 900, minimum=1)
VIGIL_SWEEP_INTERVAL_SECONDS = env_int("VIGIL_SWEEP_INTERVAL_SECONDS", 10, minimum=1)
# Worker heartbeats (moderation/heartbeat.py) and what /readyz, /metrics and the admin banner call
# degraded: no scoring worker seen for VIGIL_WORKER_STALE_SECONDS, or an upload pending longer
# than VIGIL_READY_PENDING_MAX_SECONDS.
VIGIL_WORKER_HEARTBEAT_SECONDS = env_int("VIGIL_WORKER_HEARTBEAT_SECONDS", 10, minimum=1)
VIGIL_WORKER_STALE_SECONDS = env_int("VIGIL_WORKER_STALE_SECONDS", 30, minimum=2)
VIGIL_READY_PENDING_MAX_SECONDS = env_int("VIGIL_READY_PENDING_MAX_SECONDS", 300, minimum=1)
# Orphan files (moderation/services/storage_sweep.py): stored files no row references, older than
# the grace period, are deleted every VIGIL_STORAGE_SWEEP_INTERVAL_SECONDS.
VIGIL_STORAGE_SWEEP_GRACE_SECONDS = env_int("VIGIL_STORAGE_SWEEP_GRACE_SECONDS", 3600, minimum=60)
VIGIL_STORAGE_SWEEP_INTERVAL_SECONDS = env_int("VIGIL_STORAGE_SWEEP_INTERVAL_SECONDS", 3600, minimum=60)
# Registered model weights (copied here by `register_model`); shared storage when workers run on several machines.
VIGIL_MODEL_DIR = Path(env_str("VIGIL_MODEL_DIR", str(VAR_DIR / "models")))
# Threads per model call; 0: a worker's cores divided among its pool (elsewhere every core).
VIGIL_TORCH_THREADS = env_int("VIGIL_TORCH_THREADS", 0, minimum=0)
# INT8 quantization (moderation/services/quantization.py). Registering a model version (a checkpoint,
# or the baseline at first install) also registers its int8 sibling unless this is 0.
VIGIL_QUANTIZE_AT_REGISTRATION = env_bool("VIGIL_QUANTIZE_AT_REGISTRATION", True)
# The largest score difference, in any category, between an int8 version and its fp32 source on the
# agreement check set; beyond it the int8 version is refused. Measured: 0.014 for the baseline,
# 0.026 for a tiny fine-tuned Lite0 (docs/benchmarks.md, "Quantization").
VIGIL_QUANTIZE_MAX_SCORE_DIFF = env_float("VIGIL_QUANTIZE_MAX_SCORE_DIFF", 0.05)
if not 0 < VIGIL_QUANTIZE_MAX_SCORE_DIFF <= 1:
    raise ImproperlyConfigured(f"VIGIL_QUANTIZE_MAX_SCORE_DIFF={VIGIL_QUANTIZE_MAX_SCORE_DIFF} must be in (0, 1].")
# Harmful categories a moderator can pick with keys 1-5 (the first five are on the keyboard).
# Initial values of the queue settings row (admins change them later in the admin site).
VIGIL_LEASE_SECONDS = env_int("VIGIL_LEASE_SECONDS", 120, minimum=15)
VIGIL_AUDIT_APPROVED_RATE = env_float("VIGIL_AUDIT_APPROVED_RATE", 0.02)
VIGIL_AUDIT_REJECTED_RATE = env_float("VIGIL_AUDIT_REJECTED_RATE", 0.05)
VIGIL_SECOND_REVIEW_REJECTS = env_bool("VIGIL_SECOND_REVIEW_REJECTS", False)
if not (0 <= VIGIL_AUDIT_APPROVED_RATE <= 1 and 0 <= VIGIL_AUDIT_REJECTED_RATE <= 1):
    raise ImproperlyConfigured("VIGIL_AUDIT_APPROVED_RATE and VIGIL_AUDIT_REJECTED_RATE must lie in [0, 1].")
# Bearer token Prometheus sends to /metrics (empty: only admins' browser sessions may read it).
VIGIL_METRICS_TOKEN = env_str("VIGIL_METRICS_TOKEN", "")
# Admin pages may show window figures this many seconds old (x2 for 7 days, x5 for 30, x10 for 90).
VIGIL_METRICS_MAX_STALENESS = env_int("VIGIL_METRICS_MAX_STALENESS", 60, minimum=0)
# Threshold page: a figure resting on fewer human labels is shown as "not enough labels", and
# Suggest leaves a category alone unless it has this many harmful labels naming it and safe ones.
VIGIL_THRESHOLD_MIN_LABELS = env_int("VIGIL_THRESHOLD_MIN_LABELS", 30, minimum=1)
# A new upload within this many bits (pHash, 0-7) of a human-rejected image is auto-rejected.
VIGIL_KNOWN_IMAGE_DISTANCE = env_int("VIGIL_KNOWN_IMAGE_DISTANCE", 4, minimum=0)
# PDQ (hashes/): two pictures whose 256-bit PDQ hashes differ in at most this many bits are the same
# picture (31 is the industry's usual cut; the index finds every match up to 31, so no more).
VIGIL_PDQ_DISTANCE = env_int("VIGIL_PDQ_DISTANCE", 31, minimum=0, maximum=31)
# A PDQ hash of quality below this (a flat or nearly blank picture) matches too much to act on.
VIGIL_PDQ_MIN_QUALITY = env_int("VIGIL_PDQ_MIN_QUALITY", 50, minimum=0, maximum=100)
# Decide once: a moderator's decision on a queued still image applies to at most this many near
# copies of it waiting in the queue (the rest stay for the next decision).
VIGIL_GROUP_DECISION_MAX = env_int("VIGIL_GROUP_DECISION_MAX", 500, minimum=1)
# Retraining (feedback/services/retrain.py): run when this many new human labels exist.
VIGIL_RETRAIN_MIN_LABELS = env_int("VIGIL_RETRAIN_MIN_LABELS", 500, minimum=1)
VIGIL_RETRAIN_BACKBONE = env_str("VIGIL_RETRAIN_BACKBONE", "efficientnet_lite2")
VIGIL_RETRAIN_IMAGE_SIZE = env_int("VIGIL_RETRAIN_IMAGE_SIZE", 0, minimum=0)  # 0: the backbone's default
VIGIL_RETRAIN_EPOCHS = env_int("VIGIL_RETRAIN_EPOCHS", 60, minimum=1)
VIGIL_RETRAIN_AUG_VIEWS = env_int("VIGIL_RETRAIN_AUG_VIEWS", 4, minimum=0)
VIGIL_RETRAIN_VAL_FRACTION = env_float("VIGIL_RETRAIN_VAL_FRACTION", 0.2)
# The export's split seed: fixed, so an image held out once stays held out in later runs.
VIGIL_RETRAIN_SPLIT_SEED = env_int("VIGIL_RETRAIN_SPLIT_SEED", 13, minimum=0)
# Rehearsal: an ImageFolder the operator has the rights to (safe/ and harmful/ with a SPLITS.csv,
# or train/ val/ test/ folders, or a manifest.csv), trained on beside this deployment's labels;
# its test split (else val) guards against forgetting. Empty: deployment labels only.
VIGIL_RETRAIN_BASE_DATA = env_str("VIGIL_RETRAIN_BASE_DATA", "")
VIGIL_RETRAIN_BASE_SPLITS = env_str("VIGIL_RETRAIN_BASE_SPLITS", "")  # a splits file for it, if not DATA/SPLITS.csv
# Recipe by the amount of training data: under this many labelled training images a linear probe
# (head only, frozen backbone) is trained, from it up the top backbone stages are fine-tuned too.
VIGIL_RETRAIN_PROBE_BELOW = env_int("VIGIL_RETRAIN_PROBE_BELOW", 200, minimum=0)
VIGIL_RETRAIN_UNFREEZE = env_int("VIGIL_RETRAIN_UNFREEZE", 2, minimum=0)
# Suggested thresholds need this many validation images of each class behind them.
VIGIL_RETRAIN_SUGGEST_MIN_PER_CLASS = env_int("VIGIL_RETRAIN_SUGGEST_MIN_PER_CLASS", 50, minimum=1)
# Promotion rule (feedback/services/promotion.py, docs/feedback.md): a candidate replaces the active
# model by itself only with enough held-out images of each class, a ROC AUC gain whose confidence
# interval lies above the margin, and a harmful recall (under the policy in force) whose interval's
# lower bound reaches the minimum. Forced runs are never promoted automatically.
VIGIL_PROMOTION_AUTO = env_bool("VIGIL_PROMOTION_AUTO", True)
VIGIL_PROMOTION_MIN_HARMFUL = env_int("VIGIL_PROMOTION_MIN_HARMFUL", 50, minimum=1)
VIGIL_PROMOTION_MIN_SAFE = env_int("VIGIL_PROMOTION_MIN_SAFE", 50, minimum=1)
VIGIL_PROMOTION_CONFIDENCE = env_float("VIGIL_PROMOTION_CONFIDENCE", 0.95)
VIGIL_PROMOTION_AUC_MARGIN = env_float("VIGIL_PROMOTION_AUC_MARGIN", 0.0)
VIGIL_PROMOTION_MIN_RECALL = env_float("VIGIL_PROMOTION_MIN_RECALL", 0.90)
VIGIL_PROMOTION_RESAMPLES = env_int("VIGIL_PROMOTION_RESAMPLES", 2000, minimum=100)
# Never forget: on every guard set (the base dataset's held-out split, earlier models' held-out
# sets) the candidate's AUC interval must lie above -MAX_AUC_LOSS, and on every held-out set it may
# auto-approve at most MAX_NEW_MISSES harmful images the active model kept from auto-approve.
VIGIL_PROMOTION_MAX_AUC_LOSS = env_float("VIGIL_PROMOTION_MAX_AUC_LOSS", 0.02)
VIGIL_PROMOTION_MAX_NEW_MISSES = env_int("VIGIL_PROMOTION_MAX_NEW_MISSES", 0, minimum=0)
if not (0.5 <= VIGIL_PROMOTION_CONFIDENCE < 1 and 0 <= VIGIL_PROMOTION_MIN_RECALL <= 1):
    raise ImproperlyConfigured(
        "VIGIL_PROMOTION_CONFIDENCE must lie in [0.5, 1) and VIGIL_PROMOTION_MIN_RECALL in [0, 1]."
    )
VIGIL_REVIEW_CATEGORIES = env_list("VIGIL_REVIEW_CATEGORIES", ["weapon", "nudity", "violence", "hate", "other"])
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes announces its version at INFO whenever Django starts: every manage.py command.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}

# Beat writes these into django-celery-beat's tables when it starts (DatabaseScheduler's
# update_from_dict), so a changed interval here takes effect at the next beat start.
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-uploads": {
        "task": "moderation.tasks.requeue_stale_uploads",
        "schedule": float(VIGIL_SWEEP_INTERVAL_SECONDS),
    },
    "sweep-storage": {
        "task": "moderation.tasks.sweep_storage",
        "schedule": float(VIGIL_STORAGE_SWEEP_INTERVAL_SECONDS),
    },
    "refresh-metrics-rollups": {"task": "metrics.tasks.refresh_rollups", "schedule": 60.0},
    "requeue-due-webhooks": {"task": "integrations.tasks.requeue_due_webhooks", "schedule": 60.0},
}
