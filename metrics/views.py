"""Admin pages: threshold tuning with the projected effect in view, and the metrics dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from accounts.decorators import admin_required
from accounts.roles import Role, user_has_role
from metrics.charts import curve_chart, series_chart
from metrics.forms import PolicyForm, TargetsForm, ViewForm
from metrics.models import LatencyBin
from metrics.prometheus import exposition
from metrics.selectors.operations import latency_percentiles, queue_depth_series, throughput
from metrics.selectors.traffic import category_curves, model_vs_humans, totals, traffic_cells
from metrics.selectors.windows import Window, window_named
from metrics.services.projection import (
    Positions,
    Thresholds,
    positions_from_thresholds,
    project,
    suggest,
    thresholds_for,
    traffic_from_cells,
)
from metrics.services.rollups import rollups_refresh
from metrics.services.summaries import Summary, window_summary
from moderation.bins import EDGES, TOP
from moderation.models import (
    ModelEvent,
    ModelVersion,
    PolicyDraft,
    ThresholdPolicy,
    policy_categories_without_human_band,
)
from moderation.services.categories import category_keys
from moderation.services.model_versions import model_version_ensure_active
from moderation.services.policies import policy_create, policy_current, policy_draft_resolve, policy_drafts_open
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
            # The one ?model= names is always listed (and selected), retired or not.
            "versions": ModelVersion.objects.filter(
                ~Q(status=ModelVersion.Status.RETIRED) | Q(pk=self.model_version.pk)
            ).order_by("-created_at"),
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
    policy = policy_current()
    min_labels = settings.VIGIL_THRESHOLD_MIN_LABELS
    # Every category of the policy and every active team category: one an admin just added shows
    # at 0 / 1 (all of it to humans) until someone sets its thresholds.
    shown = sorted(set(policy.thresholds) | set(category_keys()))
    traffic = traffic_from_cells(selection.summary.cells, days=selection.window.days, categories=shown)
    draft = _draft_requested(request)
    loaded = thresholds_for(draft.thresholds if draft else policy.thresholds, traffic.categories)
    targets = TargetsForm(request.GET if "suggest" in request.GET else None)
    suggestion = None
    if targets.is_bound and targets.is_valid():
        suggestion = suggest(
            traffic,
            start=positions_from_thresholds(loaded),
            min_reject_precision=targets.cleaned_data["min_reject_precision"],
            min_harmful_recall=targets.cleaned_data["min_harmful_recall"],
            min_labels=min_labels,
        )
        loaded = suggestion.thresholds(loaded)

    policy_form = PolicyForm(
        request.POST or None,
        categories=traffic.categories,
        loaded=loaded,
        optional=frozenset(traffic.categories) - set(policy.thresholds),
        initial={"draft": draft.pk if draft else None},
    )
    posted = policy_form.thresholds() if request.method == "POST" and policy_form.is_valid() else None
    if posted is not None:
        saved = _policy_save(request, policy_form)
        if saved is not None:
            return saved

    positions = positions_from_thresholds(loaded)
    projection = project(traffic, positions, min_labels=min_labels)
    vs_humans = model_vs_humans(selection.summary.cells)
    context = {
        **selection.context(),
        "policy": policy,
        "history": ThresholdPolicy.objects.select_related("created_by")[:20],
        "rows": _slider_rows(policy_form, positions, loaded),
        "top": TOP,
        "projection": projection,
        "min_labels": min_labels,
        "traffic": traffic.as_json(min_labels=min_labels),
        "targets": targets if targets.is_bound else TargetsForm(),
        "suggestion": suggestion,
        "policy_form": policy_form,
        "drafts": policy_drafts_open(),
        "draft": draft,
        "loaded_without_band": policy_categories_without_human_band(posted or loaded),
        "vs_humans": vs_humans,
        "charts": _curves(vs_humans, projection),
        "category_charts": [
            (curve, curve_chart(f"ROC: {curve.name}", *curve.roc, x_label="false positive rate", y_label="recall"))
            for curve in category_curves(selection.summary.cells, traffic.categories)
        ],
    }
    return render(request, "metrics/thresholds.html", context, status=400 if policy_form.errors else 200)


def _draft_requested(request: HttpRequest) -> PolicyDraft | None:
    """The open draft named by ``?draft=`` (the page loads its numbers), if any."""
    try:
        draft_id = int(request.GET.get("draft", ""))
    except ValueError:
        return None
    return PolicyDraft.objects.filter(pk=draft_id, status=PolicyDraft.Status.OPEN).first()


def _policy_save(request: HttpRequest, form: PolicyForm) -> HttpResponse | None:
    """Save the posted policy (and re-route the queue if asked); None when the service refused."""
    data = form.cleaned_data
    try:
        new = policy_create(
            thresholds=form.thresholds(),
            reason=data["reason"],
            created_by=request.user,
            confirm_no_human_band=data["confirm_no_human_band"],
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return None
    note = f"Saved policy v{new.version}."
    draft = PolicyDraft.objects.filter(pk=data["draft"]).first() if data["draft"] else None
    if draft is not None and policy_draft_resolve(draft=draft, user=request.user, policy=new):
        note += f" The draft from {draft.model_version.name} is marked applied."
    if data["reroute"]:
        result = queue_reroute(policy=new, user=request.user)
        note += (
            f" Re-routed the queue: {result.approved} approved, {result.rejected} rejected,"
            f" {result.still_queued} still queued, {result.held} left with the moderators holding them."
        )
    messages.success(request, note)
    query = request.GET.copy()
    query.pop("draft", None)
    return redirect(f"{reverse('metrics:thresholds')}?{query.urlencode()}")


@admin_required
@require_POST
def draft_dismiss(request: HttpRequest, draft_id: int) -> HttpResponse:
    draft = get_object_or_404(PolicyDraft, pk=draft_id)
    if policy_draft_resolve(draft=draft, user=request.user):
        messages.success(request, f"Dismissed the thresholds proposed for {draft.model_version.name}.")
    return redirect("metrics:thresholds")


def _slider_rows(form: PolicyForm, positions: Positions, loaded: Thresholds) -> list[dict]:
    """Per category: slider positions (nearest bin edges), the exact values loaded, and the
    numeric inputs that post them."""
    return [
        {
            "name": name,
            "approve": positions[name][0],
            "reject": positions[name][1],
            "approve_value": loaded[name]["approve_below"],
            "reject_value": loaded[name]["reject_from"],
            "approve_field": form[f"approve_below__{name}"],
            "reject_field": form[f"reject_from__{name}"],
        }
        for name in form.categories
    ]


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
