"""The Prometheus endpoint. Figures come from the database (roll-ups and indexed counts) at
scrape time, so one scrape of any web process sees every worker on every machine."""

from __future__ import annotations

from django.db.models import Count, F, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from metrics.models import LatencyBin, ScoreCell
from metrics.services.rollups import BINS_PER_DECADE, duration_of_bin, rollups_refresh
from moderation.models import ModelVersion, StorageSweep, Upload
from moderation.services.health import scoring_health
from reviews.models import ReviewRound

# Histogram bucket bounds in ms, each on an edge of the latency bins (10 ** (k / 20)), so the
# cumulative counts are exact: 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 ms.
BUCKET_BINS = (14, 20, 28, 34, 40, 48, 54, 60, 68, 74, 80)


class VigilCollector:
    def collect(self):
        uploads = GaugeMetricFamily("vigil_uploads", "Uploads by current status.", labels=["status"])
        by_status = dict(
            Upload.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n")
        )
        for status in Upload.Status.values:
            uploads.add_metric([status], by_status.get(status, 0))
        yield uploads
        yield CounterMetricFamily("vigil_uploads_created", "Uploads accepted.", value=sum(by_status.values()))

        names = dict(ModelVersion.objects.values_list("pk", "name"))
        routed = CounterMetricFamily(
            "vigil_routing_decisions", "Routing outcomes of scored uploads.", labels=["model_version", "outcome"]
        )
        sums = ScoreCell.objects.values("model_version").annotate(
            a=Sum("auto_approved"), r=Sum("auto_rejected"), q=Sum("queued"), n=Sum("scored")
        )
        for row in sums.order_by("model_version"):
            name = names.get(row["model_version"], str(row["model_version"]))
            routed.add_metric([name, "auto_approved"], row["a"])
            routed.add_metric([name, "auto_rejected"], row["r"])
            routed.add_metric([name, "queued"], row["q"])
        yield routed

        queue = GaugeMetricFamily("vigil_queue_depth", "Open review rounds by reason.", labels=["reason"])
        open_rounds = dict(
            ReviewRound.objects.filter(status=ReviewRound.Status.OPEN)
            .order_by()
            .values_list("reason")
            .annotate(n=Count("id"))
            .values_list("reason", "n")
        )
        for reason in ReviewRound.Reason.values:
            queue.add_metric([reason], open_rounds.get(reason, 0))
        yield queue

        latency = HistogramMetricFamily(
            "vigil_scoring_latency_seconds",
            "Decode, preprocess and inference time per upload (from the hourly roll-ups).",
            labels=["model_version"],
        )
        histograms: dict[int, dict[int, int]] = {}
        for version, b, n in (
            LatencyBin.objects.filter(metric=LatencyBin.Metric.SCORING)
            .values("model_version", "bin")
            .annotate(n=Sum("count"))
            .values_list("model_version", "bin", "n")
        ):
            histograms.setdefault(version, {})[b] = n
        for version, bins in sorted(histograms.items()):
            buckets = [
                (f"{10 ** (k / BINS_PER_DECADE) / 1000:.6g}", sum(n for b, n in bins.items() if b < k))
                for k in BUCKET_BINS
            ]
            total = sum(bins.values())
            approximate_sum = sum(duration_of_bin(b) * n for b, n in bins.items()) / 1000
            latency.add_metric([names.get(version, str(version))], [*buckets, ("+Inf", total)], approximate_sum)
        yield latency

        failures = CounterMetricFamily(
            "vigil_scoring_failures", "Uploads sent to humans because scoring failed.", value=by_status.get("failed", 0)
        )
        yield failures
        retries = Upload.objects.filter(score_attempts__gt=1).aggregate(n=Sum(F("score_attempts") - 1))["n"] or 0
        yield CounterMetricFamily("vigil_scoring_retries", "Scoring attempts beyond the first.", value=retries)

        yield from _health_metrics()
        yield from _storage_sweep_metrics()

        active = GaugeMetricFamily("vigil_model_active", "The model version routing traffic.", labels=["model_version"])
        for name in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("name", flat=True):
            active.add_metric([name], 1)
        yield active


def _health_metrics():
    health = scoring_health()
    alive = GaugeMetricFamily(
        "vigil_workers_alive", "Celery workers with a recent heartbeat, per queue consumed.", labels=["queue"]
    )
    for queue, count in sorted(health.workers_alive.items()):
        alive.add_metric([queue], count)
    yield alive
    yield GaugeMetricFamily(
        "vigil_scoring_workers_alive",
        "Workers consuming the scoring queue with a heartbeat in the last VIGIL_WORKER_STALE_SECONDS.",
        value=health.scoring_workers_alive,
    )
    yield GaugeMetricFamily(
        "vigil_oldest_pending_upload_seconds",
        "How long the oldest upload waiting for a score has waited (0: none pending).",
        value=health.oldest_pending_seconds,
    )
    yield GaugeMetricFamily(
        "vigil_degraded",
        "1 when uploads are not getting scored (see /readyz for the reasons).",
        value=int(health.degraded),
    )
    interrupted = Upload.objects.filter(lease_interruptions__gt=0).aggregate(n=Sum("lease_interruptions"))["n"] or 0
    yield CounterMetricFamily(
        "vigil_scoring_interruptions",
        "Scoring or fetching attempts whose worker died mid-task (an expired lease).",
        value=interrupted,
    )


def _storage_sweep_metrics():
    runs = StorageSweep.objects.filter(dry_run=False)
    totals = runs.aggregate(deleted=Sum("deleted"), size=Sum("deleted_bytes"), errors=Sum("errors"))
    yield CounterMetricFamily(
        "vigil_storage_orphans_deleted", "Orphan files the storage sweep removed.", value=totals["deleted"] or 0
    )
    yield CounterMetricFamily(
        "vigil_storage_orphan_bytes_deleted", "Bytes of orphan files removed.", value=totals["size"] or 0
    )
    yield CounterMetricFamily(
        "vigil_storage_sweep_errors", "Files the sweep could not list or remove.", value=totals["errors"] or 0
    )
    last = runs.exclude(finished_at=None).order_by("-finished_at").first()
    yield GaugeMetricFamily(
        "vigil_storage_sweep_last_run_timestamp_seconds",
        "When the last storage sweep finished (0: never).",
        value=last.finished_at.timestamp() if last else 0,
    )
    yield GaugeMetricFamily(
        "vigil_storage_orphans_found", "Orphan files the last sweep found.", value=last.orphans if last else 0
    )


def exposition() -> bytes:
    rollups_refresh()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VigilCollector())
    return generate_latest(registry)
