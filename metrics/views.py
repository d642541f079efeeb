"""Admin pages: threshold tuning with the projected effect in view, and the metrics dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET, require_http_methods
from prometheus_client import CONTENT_TYPE_LATEST

from accounts.decorators import admin_required
from accounts.roles import Role, user_has_role
from metrics.charts import curve_chart, series_chart
from metrics.forms import PolicyForm, TargetsForm, ViewForm
from metrics.models import LatencyBin
from metrics.prometheus import exposition
from metrics.selectors.operations import latency_percentiles, queue_depth_series, throughput
from metrics.selectors.traffic import model_vs_humans, totals, traffic_cells
from metrics.selectors.windows import Window, window_named
from metrics.services.projection import (
    NoLabels,
    positions_from_thresholds,
    project,
    suggest,
    thresholds_from_positions,
    traffic_from_cells,
)
from metrics.services.rollups import rollups_refresh
from metrics.services.summaries import Summary, window_summary
from moderation.bins import EDGES, TOP
from moderation.models import ModelEvent, ModelVersion, ThresholdPolicy
from moderation.services.model_versions import model_version_ensure_active
from moderation.services.policies import policy_create, policy_current
from reviews.selectors.queue import rounds_open
from reviews.services.reroute import queue_reroute


@dataclass(frozen=True)
class Selection:
    """Which model version, window and operating threshold a page shows, and its window summary."""

    form: ViewForm
    window: Window
    model_version: ModelVersion
    threshold: float
    summary: Summary

    def context(self) -> dict:
        return {
            "view_form": self.form,
            "window": self.window,
            "as_of": self.summary.computed_at,
            "model_version": self.model_version,
            "versions": ModelVersion.objects.exclude(status=ModelVersion.Status.RETIRED).order_by("-created_at"),
        }


def _selection(request: HttpRequest) -> Selection:
    rollups_refresh()
    form = ViewForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    window = window_named(data.get("window"))
    name = data.get("model")
    if name:
        model_version = ModelVersion.objects.filter(name=name).first()
        if model_version is None:
            raise Http404("No such model version.")
    else:
        model_version = model_version_ensure_active()
    threshold = data.get("threshold")
    summary = window_summary(model_version=model_version, window=window)
    return Selection(form, window, model_version, 0.5 if threshold is None else threshold, summary)


@admin_required
@require_http_methods(["GET", "POST"])
def thresholds(request: HttpRequest) -> HttpResponse:
    selection = _selection(request)
    window = selection.window
    policy = policy_current()
    cells = selection.summary.cells
    traffic = traffic_from_cells(cells, days=window.days, categories=sorted(policy.thresholds))
    categories = traffic.categories
    policy_form = PolicyForm(request.POST or None, categories=categories)
    if request.method == "POST" and policy_form.is_valid():
        try:
            new = policy_create(
                thresholds=policy_form.thresholds(), reason=policy_form.cleaned_data["reason"], created_by=request.user
            )
        except ValidationError as exc:
            policy_form.add_error(None, exc)
        else:
            note = f"Saved policy v{new.version}."
            if policy_form.cleaned_data["reroute"]:
                result = queue_reroute(policy=new)
                note += (
                    f" Re-routed the queue: {result.approved} approved, {result.rejected} rejected,"
                    f" {result.still_queued} still queued, {result.held} left with the moderators holding them."
                )
            messages.success(request, note)
            return redirect(f"{reverse('metrics:thresholds')}?{request.GET.urlencode()}")

    positions = positions_from_thresholds(policy.thresholds)
    for name in categories:
        positions.setdefault(name, (TOP, TOP))
    targets = TargetsForm(request.GET if "suggest" in request.GET else None)
    suggestion_error = ""
    if targets.is_bound and targets.is_valid():
        try:
            positions = suggest(
                traffic,
                start=positions,
                min_reject_precision=targets.cleaned_data["min_reject_precision"],
                min_harmful_recall=targets.cleaned_data["min_harmful_recall"],
            )
        except NoLabels as exc:
            suggestion_error = str(exc)
    projection = project(traffic, positions)
    shown = thresholds_from_positions(positions)
    vs_humans = model_vs_humans(cells)
    charts = _curves(vs_humans, projection)
    context = {
        **selection.context(),
        "policy": policy,
        "history": ThresholdPolicy.objects.select_related("created_by")[:20],
        "rows": [
            {
                "name": name,
                "approve": positions[name][0],
                "reject": positions[name][1],
                "approve_value": shown[name]["approve_below"],
                "reject_value": shown[name]["reject_from"],
            }
            for name in categories
        ],
        "top": TOP,
        "projection": projection,
        "traffic": traffic.as_json(),
        "targets": targets if targets.is_bound else TargetsForm(),
        "suggested": targets.is_bound and targets.is_valid() and not suggestion_error,
        "suggestion_error": suggestion_error,
        "policy_form": policy_form,
        "vs_humans": vs_humans,
        "charts": charts,
    }
    return render(request, "metrics/thresholds.html", context, status=400 if policy_form.errors else 200)


def _curves(vs_humans, projection=None) -> dict:
    fpr, tpr = vs_humans.roc
    recall, precision = vs_humans.pr
    marks = projection.operating_points() if projection is not None else []
    return {
        "roc": curve_chart(
            "ROC curve",
            fpr,
            tpr,
            x_label="false positive rate",
            y_label="true positive rate",
            diagonal=True,
            marks=marks,
        ),
        "pr": curve_chart("Precision-recall curve", recall, precision, x_label="recall", y_label="precision"),
    }


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With ``VIGIL_METRICS_TOKEN`` set, scrapers send it as a bearer
    token; an admin's browser session is also accepted."""
    token = settings.VIGIL_METRICS_TOKEN
    offered = request.headers.get("Authorization", "")
    allowed = (token and constant_time_compare(offered, f"Bearer {token}")) or user_has_role(request.user, Role.ADMIN)
    if not allowed:
        return HttpResponse(
            "Send the metrics token: Authorization: Bearer <VIGIL_METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def _shadow_comparison(window):
    """The active model and each shadow candidate on the same live traffic: the hours of the
    window since the latest shadow began scoring (both scored every upload routed since)."""
    shadows = list(ModelVersion.objects.filter(status=ModelVersion.Status.SHADOW))
    if not shadows:
        return None
    started = (
        ModelEvent.objects.filter(model_version__in=shadows, action=ModelEvent.Action.SHADOW)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    ) or window.since
    since = max(window.since, started.replace(minute=0, second=0, microsecond=0))
    span = Window(key=window.key, since=since, until=window.until)
    rows = []
    for version in [model_version_ensure_active(), *shadows]:
        cells = traffic_cells(model_version=version, window=span)
        rows.append({"version": version, "scored": totals(cells)["scored"], "vs": model_vs_humans(cells)})
    return {"since": since, "rows": rows}


@admin_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    selection = _selection(request)
    window, summary = selection.window, selection.summary
    counts = totals(summary.cells)
    vs_humans = model_vs_humans(summary.cells, threshold=selection.threshold)
    flow = throughput(hourly=summary.hourly, window=window)
    depth = queue_depth_series(window=window)
    context = {
        **selection.context(),
        "counts": counts,
        "vs_humans": vs_humans,
        "overturn_rate": counts["overturned"] / counts["audited"] if counts["audited"] else None,
        "agreement": counts["peer_agreed"] / counts["peer_compared"] if counts["peer_compared"] else None,
        "scoring": latency_percentiles(
            metric=LatencyBin.Metric.SCORING, window=window, model_version=selection.model_version
        ),
        "to_decision": latency_percentiles(metric=LatencyBin.Metric.TO_DECISION, window=window),
        "to_human": latency_percentiles(metric=LatencyBin.Metric.TO_HUMAN_DECISION, window=window),
        "throughput": flow,
        "queue_now": rounds_open().count(),
        "depth": depth,
        "charts": {
            **_curves(vs_humans),
            "depth": series_chart("Queue depth", depth, y_label="open reviews"),
            "volume": series_chart("Scored per hour", flow.hourly, y_label="uploads"),
        },
        "edges": EDGES,
        "comparison": _shadow_comparison(window),
    }
    return render(request, "metrics/dashboard.html", context)
