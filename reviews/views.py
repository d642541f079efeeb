"""The moderator workspace: queue, one-at-a-time review, grid, undo, preferences, stats.

Every page that shows work claims it first (an expiring lease, see ``services/claims.py``);
the review page renews the lease while it is open. Filters and ordering ride along in the query
string, so "next" after a decision keeps serving the same slice of the queue.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import moderator_required
from accounts.roles import Role, user_has_role
from moderation.selectors import scored_frames, video_timeline
from reviews.forms import (
    BulkDecisionForm,
    DecisionForm,
    GroupDecisionForm,
    PreferencesForm,
    QueueFilterForm,
    category_choices,
)
from reviews.models import ReviewRound
from reviews.selectors.copies import round_near_copies
from reviews.selectors.history import preferences_for, similar_decisions
from reviews.selectors.queue import Ordering, QueueFilters, queue_counts, queue_page_rounds
from reviews.selectors.stats import moderator_stats
from reviews.services.claims import (
    ClaimUnavailable,
    lease_heartbeat_seconds,
    round_claim,
    round_release,
    round_renew,
    rounds_claim,
)
from reviews.services.decisions import (
    UNDO_DEPTH,
    DecisionConflict,
    RevealRequired,
    category_default,
    decision_create,
    decision_undo_entry,
    decisions_create_many,
    decisions_recent,
    overrules_auto_reject,
)
from reviews.services.group_decisions import decisions_create_group

SKIPPED = "review_skipped"
COPIES_SHOWN = 12  # thumbnails of near copies on the review page (the group decides them all)


def _slice(request: HttpRequest) -> tuple[QueueFilterForm, QueueFilters, Ordering, str]:
    """The filters and ordering in the query string, and the query string that carries them on."""
    form = QueueFilterForm(request.GET)
    filters, ordering = form.result()
    query = urlencode(
        {**filters.as_query(), **({"ordering": ordering.value} if ordering != Ordering.UNCERTAIN else {})}
    )
    return form, filters, ordering, query


def _with_query(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


def _next_url(query: str) -> str:
    return _with_query(reverse("reviews:next"), query)


@moderator_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    form, filters, ordering, query = _slice(request)
    page = Paginator(queue_page_rounds(filters=filters, ordering=ordering), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "reviews/queue.html",
        {
            "filter_form": form,
            "page": page,
            "counts": queue_counts(filters=filters),
            "query": query,
            "now": timezone.now(),
            "categories": category_choices(),
            "last_decision": _last_decision(request),
        },
        status=400 if form.errors else 200,
    )


@moderator_required
@require_GET
def next_item(request: HttpRequest) -> HttpResponse:
    """Claim the next round in the asked ordering and show it. Rounds skipped in this session come
    last: once only they are left, they are served again."""
    _, filters, ordering, query = _slice(request)
    skipped = request.session.get(SKIPPED, [])
    claimed = rounds_claim(moderator=request.user, filters=filters, ordering=ordering, skip_ids=skipped)
    if not claimed and skipped:
        request.session[SKIPPED] = []
        claimed = rounds_claim(moderator=request.user, filters=filters, ordering=ordering)
        if claimed:
            messages.info(request, "Only items you skipped are left; here they are again.")
    if not claimed:
        messages.info(request, "Nothing left to review here. Well done.")
        return redirect(_with_query(reverse("reviews:queue"), query))
    return redirect(_with_query(reverse("reviews:round", args=[claimed[0].pk]), query))


def _last_decision(request: HttpRequest):
    recent = decisions_recent(moderator=request.user)
    return recent[0] if recent else None


def _round_page(request: HttpRequest, round_: ReviewRound, query: str, form: DecisionForm, *, status: int = 200):
    upload = round_.upload
    prefs = preferences_for(request.user)
    holds = round_.claimed_by_id == request.user.pk and round_.status == ReviewRound.Status.OPEN
    copies = round_near_copies(round_=round_, moderator=request.user) if holds else []
    return render(
        request,
        "reviews/round.html",
        {
            "round": round_,
            "upload": upload,
            "form": form,
            "query": query,
            "prefs": prefs,
            "categories": category_choices()[:9],
            "default_category": category_default(round_),
            "similar": similar_decisions(upload=upload),
            "near_bits": settings.VIGIL_KNOWN_IMAGE_DISTANCE,
            "frames": scored_frames(upload),
            "video": video_timeline(upload),
            "recent": decisions_recent(moderator=request.user),
            "undo_depth": UNDO_DEPTH,
            "holds": holds,
            "copies": copies,
            "copies_shown": copies[:COPIES_SHOWN],
            "copy_ids": ",".join(str(r.pk) for r in copies),
            "copies_more": max(len(copies) - COPIES_SHOWN, 0),
            "pdq_bits": settings.VIGIL_PDQ_DISTANCE,
            "matches": list(upload.hash_matches.all()),
            "needs_reveal": overrules_auto_reject(round_, upload),
            "heartbeat": lease_heartbeat_seconds(),
        },
        status=status,
    )


def _page_round(round_id: int) -> ReviewRound | None:
    """The round with what its review page shows, or None when it no longer exists."""
    rounds = ReviewRound.objects.select_related("upload__score__model_version", "upload__submitter", "claimed_by")
    return rounds.filter(pk=round_id).first()


def _page_again(request: HttpRequest, round_id: int, query: str, form: DecisionForm) -> HttpResponse:
    """The review page again with the form's errors (400), or the next item if the round is gone."""
    round_ = _page_round(round_id)
    if round_ is None:
        return redirect(_next_url(query))
    return _round_page(request, round_, query, form, status=400)


@moderator_required
@require_GET
def round_review(request: HttpRequest, round_id: int) -> HttpResponse:
    _, _, _, query = _slice(request)
    try:
        round_claim(round_id=round_id, moderator=request.user)
    except ClaimUnavailable as exc:
        messages.warning(request, str(exc))
    round_ = _page_round(round_id)
    if round_ is None:
        return redirect(_next_url(query))
    return _round_page(request, round_, query, DecisionForm())


@moderator_required
@require_POST
def round_decide(request: HttpRequest, round_id: int) -> HttpResponse:
    _, _, _, query = _slice(request)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _page_again(request, round_id, query, form)
    try:
        decision_create(round_id=round_id, moderator=request.user, **form.cleaned_data)
    except RevealRequired as exc:
        form.add_error("confirmed_unrevealed", str(exc))
        return _page_again(request, round_id, query, form)
    except DecisionConflict as exc:
        messages.warning(request, str(exc))
    else:
        label = form.cleaned_data["label"]
        category = form.cleaned_data["category"]
        messages.success(request, f"Marked {label}{f' ({category})' if category else ''}. Backspace undoes it.")
    return redirect(_next_url(query))


@moderator_required
@require_POST
def round_decide_group(request: HttpRequest, round_id: int) -> HttpResponse:
    """One decision for the picture and the near copies the page showed (decide once)."""
    _, _, _, query = _slice(request)
    form = GroupDecisionForm(request.POST)
    if not form.is_valid():
        return _page_again(request, round_id, query, form)
    data = dict(form.cleaned_data)
    try:
        result = decisions_create_group(
            round_id=round_id, member_ids=data.pop("members"), moderator=request.user, **data
        )
    except DecisionConflict as exc:
        messages.warning(request, str(exc))
        return redirect(_next_url(query))
    label, category = data["label"], data["category"]
    copies = len(result.members)
    messages.success(
        request,
        f"Marked {label}{f' ({category})' if category else ''}: this picture and {copies} near "
        f"cop{'y' if copies == 1 else 'ies'}, each its own decision. Backspace undoes them all.",
    )
    if result.skipped:
        messages.warning(request, f"{len(result.skipped)} left for later: {result.skipped_summary}.")
    return redirect(_next_url(query))


@moderator_required
@require_POST
def round_skip(request: HttpRequest, round_id: int) -> HttpResponse:
    _, _, _, query = _slice(request)
    round_release(round_id=round_id, moderator=request.user)
    request.session[SKIPPED] = [*request.session.get(SKIPPED, []), round_id][-500:]
    return redirect(_next_url(query))


@moderator_required
@require_POST
def round_renew_lease(request: HttpRequest, round_id: int) -> HttpResponse:
    """Heartbeat from the open review page (htmx): answers a small status fragment."""
    try:
        round_ = round_renew(round_id=round_id, moderator=request.user)
    except ClaimUnavailable as exc:
        return render(request, "reviews/_lease.html", {"lost": str(exc)}, status=409)
    return render(request, "reviews/_lease.html", {"round": round_, "heartbeat": lease_heartbeat_seconds()})


@moderator_required
@require_POST
def undo(request: HttpRequest) -> HttpResponse:
    _, _, _, query = _slice(request)
    raw = request.POST.get("decision", "")
    to_grid = request.POST.get("then") == "grid"
    try:
        undone = decision_undo_entry(moderator=request.user, decision_id=int(raw) if raw.isdigit() else None)
    except DecisionConflict as exc:
        messages.warning(request, str(exc))
        return redirect(_with_query(reverse("reviews:grid"), query) if to_grid else _next_url(query))
    round_ = undone.round
    if undone.others:
        copies = f"{undone.others} near cop{'y' if undone.others == 1 else 'ies'}"
        messages.info(request, f"Group decision undone, with {copies}: they are held for you to decide again.")
    for why in sorted(set(undone.left)):
        count = undone.left.count(why)
        messages.warning(request, f"{count} of the group left as decided: {why}")
    if to_grid:  # the reopened round is held for you, so the grid shows it first
        messages.info(request, "Decision undone. The image is back in your grid.")
        return redirect(_with_query(reverse("reviews:grid"), query))
    messages.info(request, "Decision undone. Decide this image again.")
    return redirect(_with_query(reverse("reviews:round", args=[round_.pk]), query))


@moderator_required
@require_http_methods(["GET", "POST"])
def grid(request: HttpRequest) -> HttpResponse:
    """Several easy items at once: claim a page of rounds, decide the selected ones together."""
    form, filters, ordering, query = _slice(request)
    if "ordering" not in request.GET:
        ordering = Ordering.SCORE_ASC
        query = urlencode({**filters.as_query(), "ordering": ordering.value})
    prefs = preferences_for(request.user)
    status = 200
    held = rounds_claim(moderator=request.user, filters=filters, ordering=ordering, limit=prefs.grid_size)
    prefetch_related_objects(held, "upload__hash_matches")
    bulk = BulkDecisionForm(request.POST or None, round_ids=[r.pk for r in held])
    if request.method == "POST":
        if bulk.is_valid():
            result = decisions_create_many(
                round_ids=bulk.cleaned_data["rounds"],
                moderator=request.user,
                label=bulk.cleaned_data["label"],
                category=bulk.cleaned_data["category"],
                revealed_ids=bulk.cleaned_data["revealed"],
            )
            if result.decided:
                messages.success(request, f"Marked {len(result.decided)} {bulk.cleaned_data['label']}.")
            for conflict in sorted(set(result.conflicts)):
                messages.warning(request, conflict)
            return redirect(_with_query(reverse("reviews:grid"), query))
        status = 400
    return render(
        request,
        "reviews/grid.html",
        {
            "rounds": held,
            "bulk": bulk,
            "filter_form": form,
            "query": query,
            "prefs": prefs,
            "categories": category_choices()[:9],
            "last_decision": _last_decision(request),
            "then": "grid",
        },
        status=status,
    )


@moderator_required
@require_GET
def counts(request: HttpRequest) -> HttpResponse:
    """The queue counts (htmx fragment). Review and grid pages load it after they render, and it
    refreshes itself: counting a million open rounds should not slow the page a moderator waits on."""
    _, filters, _, query = _slice(request)
    return render(
        request, "reviews/_counts.html", {"counts": queue_counts(filters=filters), "query": query, "live": True}
    )


@moderator_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, instance=preferences_for(request.user))
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Preferences saved.")
        return redirect("reviews:preferences")
    return render(request, "reviews/preferences.html", {"form": form}, status=400 if form.errors else 200)


@moderator_required
@require_GET
def stats(request: HttpRequest) -> HttpResponse:
    """Moderator statistics over the last ``days`` (default 7). Admins see everyone; a moderator
    sees their own row."""
    try:
        days = min(max(int(request.GET.get("days", 7)), 1), 365)
    except ValueError:
        days = 7
    until = timezone.now()
    everyone = user_has_role(request.user, Role.ADMIN)
    rows = moderator_stats(
        since=until - timedelta(days=days), until=until, moderator_ids=None if everyone else [request.user.pk]
    )
    return render(request, "reviews/stats.html", {"rows": rows, "days": days, "everyone": everyone})
