"""Admin pages of the feedback loop: export, training runs, model versions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import admin_required
from feedback.forms import ExportForm, ModelActionForm
from feedback.models import TrainingRun
from feedback.services.export import export_rows, export_zip_stream, manifest_lines
from feedback.services.promotion import Rules
from feedback.services.retrain import RunRefused, new_labels_since_last_run, training_run_request
from moderation.models import Change, ModelEvent, ModelVersion
from moderation.services.changes import changes_acknowledge
from moderation.services.model_versions import (
    RegistryError,
    model_version_activate,
    model_version_rollback,
    model_version_rollback_target,
    model_version_set_tiling,
    model_version_shadow,
)
from moderation.services.policies import policy_current


@admin_required
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.GET if "format" in request.GET else None)
    if form.is_bound and form.is_valid():
        filters = form.filters()
        split = {"val_fraction": form.cleaned_data["val_fraction"], "seed": form.cleaned_data["seed"]}
        fmt = form.cleaned_data["format"]
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        if fmt == "zip":
            response = StreamingHttpResponse(export_zip_stream(filters, **split), content_type="application/zip")
        else:
            content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
            response = StreamingHttpResponse(
                manifest_lines(export_rows(filters, **split), fmt), content_type=content_type
            )
        response["Content-Disposition"] = f'attachment; filename="vigil-feedback-{stamp}.{fmt}"'
        return response
    return render(request, "feedback/export.html", {"form": form}, status=400 if form.errors else 200)


@admin_required
@require_http_methods(["GET", "POST"])
def training(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        from feedback.tasks import run_training

        try:
            run = training_run_request(trigger=TrainingRun.Trigger.ADMIN, user=request.user)
        except RunRefused as exc:
            messages.warning(request, str(exc))
        else:
            force = bool(request.POST.get("force"))
            transaction.on_commit(lambda: run_training.delay(run.pk, force))
            messages.success(request, f"Training run {run.pk} queued.")
        return redirect("feedback:training")
    return render(
        request,
        "feedback/training.html",
        {
            "runs": TrainingRun.objects.select_related("candidate", "requested_by")[:30],
            "new_labels": new_labels_since_last_run(),
            "rules": Rules.from_settings(),
            "base_data": settings.VIGIL_RETRAIN_BASE_DATA,
            "probe_below": settings.VIGIL_RETRAIN_PROBE_BELOW,
        },
    )


@admin_required
@require_GET
def training_run(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run's row (htmx polls it while the run is going)."""
    run = get_object_or_404(TrainingRun.objects.select_related("candidate"), pk=run_id)
    return render(request, "feedback/_run.html", {"run": run})


@admin_required
@require_http_methods(["GET"])
def models(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "feedback/models.html",
        {
            "versions": ModelVersion.objects.order_by("-created_at")[:30],
            "events": ModelEvent.objects.select_related("model_version", "actor", "policy")[:40],
            "policy": policy_current(),
            "rollback": model_version_rollback_target(),
            "active": ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first(),
            "tiling_choices": ModelVersion.Tiling.choices,
        },
    )


@admin_required
@require_POST
def model_action(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = ModelActionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("feedback:models")
    action, note = form.cleaned_data["action"], form.cleaned_data["note"].strip()
    try:
        if action == "shadow":
            model_version_shadow(model_version=version, user=request.user)
            messages.success(request, f"{version.name} now scores new uploads in shadow.")
        elif action == "tiling":
            tiling = form.cleaned_data["tiling"]
            scoring = version.status in (ModelVersion.Status.ACTIVE, ModelVersion.Status.SHADOW)
            if scoring and tiling != version.tiling and not form.cleaned_data["confirm"]:
                messages.error(request, f"Tick the box to confirm: {version.name} scores uploads now.")
                return redirect("feedback:models")
            changed = model_version_set_tiling(model_version=version, tiling=tiling, user=request.user, note=note)
            messages.success(
                request,
                f"{changed.name} scores {changed.get_tiling_display().lower()}"
                + ("; workers switch on their next task." if scoring else "."),
            )
        elif action == "promote":
            model_version_activate(model_version=version, user=request.user, note=note)
            messages.success(
                request,
                f"{version.name} now routes traffic under the policy in force; workers switch on their next task. "
                "Its suggested thresholds, if they differ, wait as a draft on the threshold page.",
            )
        else:
            restored = model_version_rollback(user=request.user, reason=note)
            messages.success(
                request, f"Rolled back to {restored.name}; policy v{policy_current().version} is in force."
            )
    except RegistryError as exc:
        messages.error(request, str(exc))
    return redirect("feedback:models")


@admin_required
@require_GET
def changes(request: HttpRequest) -> HttpResponse:
    """Every change to the active model, the shadow set and the policy, newest first."""
    page = Paginator(Change.objects.select_related("actor", "model_version", "policy"), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "feedback/changes.html", {"page": page})


@admin_required
@require_POST
def changes_acknowledge_view(request: HttpRequest) -> HttpResponse:
    try:
        up_to = int(request.POST.get("up_to", ""))
    except ValueError:
        messages.error(request, "Nothing to acknowledge.")
        return redirect("feedback:changes")
    changes_acknowledge(user=request.user, up_to=up_to)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("feedback:changes")
    return redirect(target)
