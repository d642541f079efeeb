"""The first review page: list the queue, show one item, record approve/reject."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.roles import Role, user_has_role
from moderation.models import Upload
from reviews.forms import DecisionForm
from reviews.selectors import queue_next_after, queue_uploads
from reviews.services import DecisionConflict, decision_create


def moderator_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not user_has_role(request.user, Role.MODERATOR):
            raise PermissionDenied("Moderators only.")
        return view(request, *args, **kwargs)

    return wrapper


@moderator_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    uploads = queue_uploads()
    page = Paginator(uploads, 50).get_page(request.GET.get("page"))
    return render(request, "reviews/queue.html", {"page": page, "total": page.paginator.count})


@moderator_required
@require_GET
def next_item(request: HttpRequest) -> HttpResponse:
    upload = queue_uploads().first()
    if upload is None:
        messages.info(request, "The queue is empty.")
        return redirect("reviews:queue")
    return redirect("reviews:item", upload_id=upload.pk)


@moderator_required
@require_http_methods(["GET", "POST"])
def item(request: HttpRequest, upload_id: str) -> HttpResponse:
    upload = get_object_or_404(Upload.objects.select_related("score__model_version", "submitter"), pk=upload_id)
    form = DecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            decision_create(
                upload_id=upload.pk,
                moderator=request.user,
                label=form.cleaned_data["label"],
                note=form.cleaned_data["note"],
                time_spent_ms=form.cleaned_data["time_spent_ms"],
            )
        except DecisionConflict as exc:
            messages.warning(request, str(exc))
        else:
            messages.success(request, f"Marked {form.cleaned_data['label']}.")
        following = queue_next_after(upload)
        if following is None:
            return redirect("reviews:queue")
        return redirect("reviews:item", upload_id=following.pk)
    return render(
        request,
        "reviews/item.html",
        {"upload": upload, "form": form, "decisions": upload.decisions.select_related("moderator")},
        status=400 if form.errors else 200,
    )
