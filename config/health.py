"""Health and readiness probes for load balancers and orchestrators. No sign-in: they reveal only
whether the process and its dependencies answer, and whether uploads are getting scored.

``/readyz`` answers 503 only for what stops *this web process* from serving: the database or the
broker. Scoring workers that are gone or not consuming make it ``"status": "degraded"`` with the
reasons, still 200: the web keeps accepting uploads, which wait safely (pending) and are scored
when a worker returns, so taking every web process out of the load balancer would turn a scoring
outage into an intake outage for every client. Alert on ``vigil_degraded`` in ``/metrics``."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the web process runs and answers."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database and the broker answer. 503 with the failing part otherwise."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        from kombu import Connection

        url = settings.CELERY_BROKER_URL
        with Connection(url, connect_timeout=2, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        return JsonResponse({"status": "unavailable", **checks}, status=503)
    from moderation.services.health import scoring_health

    health = scoring_health()
    scoring = {
        "workers_alive": health.scoring_workers_alive,
        "oldest_pending_seconds": round(health.oldest_pending_seconds, 1),
    }
    if health.degraded:
        return JsonResponse({"status": "degraded", **checks, "scoring": scoring, "reasons": health.reasons})
    return JsonResponse({"status": "ok", **checks, "scoring": scoring})
