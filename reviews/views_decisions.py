"""Correcting decisions: the decisions page (a moderator's own; admins anyone's), changing one
from there, and an admin reopening an upload from its page."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import admin_required, moderator_required
from accounts.roles import Role, user_has_role
from reviews.forms import DecisionListForm
from reviews.selectors.decisions import decisions_list, decisions_undone_for, is_overturned
from reviews.selectors.history import preferences_for
from reviews.services.decisions import DecisionConflict
from reviews.services.reopen import ReopenRefused, decision_change, upload_reopen

PAGE_SIZE = 25


@moderator_required
@require_GET
def decisions(request: HttpRequest) -> HttpResponse:
    everyone = user_has_role(request.user, Role.ADMIN)
    if not everyone and request.GET.get("moderator"):
        raise PermissionDenied("Only admins can see other moderators' decisions.")
    form = DecisionListForm(request.GET or None, everyone=everyone)
    filters = form.result()
    page = Paginator(decisions_list(viewer=request.user, filters=filters), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page)
    undone = decisions_undone_for(rows)
    query = urlencode({k: v for k, v in request.GET.items() if k != "page" and v})
    return render(
        request,
        "reviews/decisions.html",
        {
            "filter_form": form,
            "page": page,
            "rows": [(d, is_overturned(d), undone.get(d.pk, [])) for d in rows],
            "everyone": everyone,
            "prefs": preferences_for(request.user),
            "query": query,
        },
        status=400 if form.errors else 200,
    )


@moderator_required
@require_POST
def decision_change_view(request: HttpRequest, decision_id: int) -> HttpResponse:
    try:
        round_ = decision_change(decision_id=decision_id, actor=request.user)
    except DecisionConflict as exc:
        messages.warning(request, str(exc))
        return redirect(_back(request, reverse("reviews:decisions")))
    messages.info(request, "Decide this image again; your new decision replaces the old one.")
    return redirect("reviews:round", round_.pk)


@admin_required
@require_POST
def upload_reopen_view(request: HttpRequest, upload_id) -> HttpResponse:
    claim = request.POST.get("claim") == "1"
    try:
        round_ = upload_reopen(upload_id=upload_id, actor=request.user, note=request.POST.get("note", ""), claim=claim)
    except ReopenRefused as exc:
        messages.warning(request, str(exc))
        return redirect("moderation:upload", upload_id)
    if claim:
        messages.info(request, "Reopened. Decide it now; the new decision stands.")
        return redirect("reviews:round", round_.pk)
    messages.success(request, f"Reopened: round {round_.number} waits in the review queue.")
    return redirect("moderation:upload", upload_id)


def _back(request: HttpRequest, default: str) -> str:
    """The decisions page with the filters the form came from (only a local path is followed)."""
    back = request.POST.get("next", "")
    return back if back.startswith(reverse("reviews:decisions")) else default
