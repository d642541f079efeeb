"""Admin pages of the feedback loop: export, training runs, model versions."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import admin_required
from feedback.forms import ExportForm, ModelActionForm
from feedback.models import TrainingRun
from feedback.services.export import export_rows, export_zip_stream, manifest_lines
from feedback.services.retrain import RunRefused, new_labels_since_last_run, training_run_request
from moderation.models import ModelEvent, ModelVersion
from moderation.services.model_versions import (
    RegistryError,
    model_version_activate,
    model_version_rollback,
    model_version_shadow,
)


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
            "events": ModelEvent.objects.select_related("model_version", "actor")[:40],
        },
    )


@admin_required
@require_POST
def model_action(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = ModelActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown action.")
        return redirect("feedback:models")
    action, note = form.cleaned_data["action"], form.cleaned_data["note"]
    try:
        if action == "shadow":
            model_version_shadow(model_version=version, user=request.user)
            messages.success(request, f"{version.name} now scores new uploads in shadow.")
        elif action == "promote":
            model_version_activate(
                model_version=version,
                apply_thresholds=form.cleaned_data["apply_thresholds"],
                user=request.user,
                note=note,
            )
            messages.success(request, f"{version.name} now routes traffic; workers switch on their next task.")
        else:
            restored = model_version_rollback(apply_thresholds=form.cleaned_data["apply_thresholds"], user=request.user)
            messages.success(request, f"Rolled back to {restored.name}.")
    except RegistryError as exc:
        messages.error(request, str(exc))
    return redirect("feedback:models")
