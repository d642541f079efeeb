"""Moderator decisions: record, undo, decide many at once.

A decision closes the round the moderator holds with a conditional UPDATE that must change
exactly one row; the Decision row's unique key on its round backs that up in the database. The
upload then takes the human's label (approved if safe, rejected if harmful), also for an audit
of an automatic decision or a second review, so the latest final decision is what stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from moderation.models import Upload
from moderation.services.categories import category_keys
from moderation.services.known_images import known_image_forget, known_image_record
from moderation.services.outcomes import outcome_announce
from reviews.models import Decision, QueueSettings, ReviewRound
from reviews.services.claims import lease_until
from reviews.services.rounds import round_open

UNDO_DEPTH = 10  # a moderator's last ten decisions (a group decision is one) stay editable


class DecisionConflict(Exception):
    """The decision cannot be recorded; the message says why, in words for the moderator."""


class RevealRequired(DecisionConflict):
    """Approving what the model rejected automatically takes a look at it, or an explicit "approve
    without looking"."""


REVEAL_REQUIRED = (
    "The model rejected this image automatically. Reveal it (r) before approving it, "
    "or tick \u201cApprove without looking\u201d."
)


def overrules_auto_reject(round_: ReviewRound, upload: Upload) -> bool:
    return (
        round_.reason == ReviewRound.Reason.AUDIT
        and upload.status == Upload.Status.REJECTED
        and upload.decided_by == Upload.DecidedBy.AUTO
    )


def _conflict_reason(round_id: int, moderator: AbstractBaseUser) -> str:
    round_ = ReviewRound.objects.select_related("claimed_by").filter(pk=round_id).first()
    if round_ is None:
        return "This review no longer exists."
    if round_.status != ReviewRound.Status.OPEN:
        return "This image was already decided; your decision was not saved."
    if round_.claimed_by is None:
        return "Your claim on this image expired and it went back to the queue; your decision was not saved."
    if round_.claimed_by_id != moderator.pk:
        return (
            f"Your claim on this image expired and {round_.claimed_by.get_username()} is reviewing it now; "
            "your decision was not saved."
        )
    return "This image cannot be decided right now."


def decision_create(
    *,
    round_id: int,
    moderator: AbstractBaseUser,
    label: str,
    category: str = "",
    note: str = "",
    time_spent_ms: int | None = None,
    revealed: bool | None = None,
    confirmed_unrevealed: bool = False,
    group: UUID | None = None,
) -> Decision:
    """Record ``moderator``'s label on the round they hold and finish the upload. ``revealed``
    records whether they unblurred the image (None: not known); ``group`` is the id a group
    decision gives each of its decisions (``services/group_decisions.py``).

    Raises :class:`DecisionConflict` if the round is closed or held by someone else, and
    :class:`RevealRequired` for an approval of an automatic reject (an audit) made without
    revealing the image or ``confirmed_unrevealed``.
    """
    if label not in Decision.Label.values:
        raise ValueError(f"label must be one of {Decision.Label.values}")
    if label == Decision.Label.SAFE:
        category = ""
    now = timezone.now()
    with transaction.atomic():
        closed = ReviewRound.objects.filter(pk=round_id, status=ReviewRound.Status.OPEN, claimed_by=moderator).update(
            status=ReviewRound.Status.DECIDED, closed_at=now
        )
        if closed != 1:
            raise DecisionConflict(_conflict_reason(round_id, moderator))
        round_ = ReviewRound.objects.select_related("upload__score").get(pk=round_id)
        upload = round_.upload
        if (
            label == Decision.Label.SAFE
            and not (revealed or confirmed_unrevealed)
            and overrules_auto_reject(round_, upload)
        ):
            raise RevealRequired(REVEAL_REQUIRED)
        finished = (
            Upload.objects.filter(pk=upload.pk)
            .exclude(status=Upload.Status.PENDING)
            .update(
                status=Upload.Status.REJECTED if label == Decision.Label.HARMFUL else Upload.Status.APPROVED,
                decided_by=Upload.DecidedBy.HUMAN,
                decided_at=now,
                updated_at=now,
            )
        )
        if finished != 1:
            raise DecisionConflict("This image is being scored again; try it later.")
        score = upload.score
        decision = Decision.objects.create(
            upload=upload,
            round=round_,
            moderator=moderator,
            label=label,
            category=category,
            note=note,
            model_version_id=score.model_version_id if score else None,
            model_score=score.harmful_score if score else None,
            model_category_scores=score.category_scores if score else None,
            upload_status_before=upload.status,
            upload_decided_by_before=upload.decided_by,
            time_spent_ms=time_spent_ms,
            revealed=revealed,
            group=group,
        )
        known_image_record(upload=upload, label=label, labelled_by=moderator)
        if (
            label == Decision.Label.HARMFUL
            and round_.reason in (ReviewRound.Reason.MODEL, ReviewRound.Reason.FAILED)
            and QueueSettings.load().second_review_rejects
        ):
            upload.refresh_from_db()
            round_open(upload=upload, reason=ReviewRound.Reason.SECOND, excluded_moderator=moderator)
        outcome_announce(upload_id=upload.pk)
    return decision


@dataclass
class BulkResult:
    decided: list[Decision] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def category_default(round_: ReviewRound) -> str:
    """The reject category when none was chosen: the model's top category when it is one of the
    active categories, else "other" while it is active, else the last of them."""
    names = category_keys()
    if round_.category in names:
        return round_.category
    return "other" if "other" in names else names[-1]


def decisions_create_many(
    *,
    round_ids: Iterable[int],
    moderator: AbstractBaseUser,
    label: str,
    category: str = "",
    revealed_ids: Iterable[int] = (),
) -> BulkResult:
    """Decide several held rounds with one label (grid mode). Each is its own conditional decision,
    so a lost lease on one does not undo the others. A reject with no ``category`` takes each
    image's own top category; ``revealed_ids`` are the rounds whose tile was unblurred."""
    result = BulkResult()
    round_ids = list(round_ids)
    revealed_ids = set(revealed_ids)
    keys = {r.pk: r for r in ReviewRound.objects.filter(pk__in=round_ids)}
    for round_id in round_ids:
        chosen = category
        if label == Decision.Label.HARMFUL and not chosen and round_id in keys:
            chosen = category_default(keys[round_id])
        try:
            result.decided.append(
                decision_create(
                    round_id=round_id,
                    moderator=moderator,
                    label=label,
                    category=chosen,
                    revealed=round_id in revealed_ids,
                )
            )
        except DecisionConflict as exc:
            result.conflicts.append(str(exc))
    return result


def decisions_recent(*, moderator: AbstractBaseUser) -> list[Decision]:
    """The moderator's last :data:`UNDO_DEPTH` standing decisions, newest first: the ones they may
    undo. Undone ones take no place among them. A group decision is one entry, however many
    pictures it decided (else a group of 50 would push every other decision out): its first
    standing decision (the picture the moderator looked at), with ``group_size`` the number of its
    decisions still standing. Every entry carries ``group_size`` (1 for a decision alone)."""
    standing = Decision.objects.filter(moderator=moderator, round__status=ReviewRound.Status.DECIDED)
    entries = _undo_entries(standing)
    groups = [key for key in entries if isinstance(key, UUID)]
    sizes = {}
    if groups:
        for row in standing.filter(group__in=groups).values("group").annotate(first=Min("id"), n=Count("id")):
            sizes[row["group"]] = (row["first"], row["n"])
    ids = [sizes[key][0] if isinstance(key, UUID) else key for key in entries]
    rows = {d.pk: d for d in standing.filter(pk__in=ids).select_related("round", "upload")}
    recent = [rows[pk] for pk in ids]
    for decision in recent:
        decision.group_size = sizes[decision.group][1] if decision.group else 1
    return recent


def _undo_entries(standing: QuerySet[Decision]) -> list[int | UUID]:
    """The newest :data:`UNDO_DEPTH` entries: a decision's id, or a group's id for all of its
    decisions. Read a page at a time, so a few large groups cost a few reads of two columns."""
    newest = standing.order_by("-created_at", "-id").values_list("pk", "group")
    entries: list[int | UUID] = []
    offset, page = 0, 200
    while True:
        rows = list(newest[offset : offset + page])
        for pk, group in rows:
            key = pk if group is None else group
            if key in entries:
                continue
            if len(entries) == UNDO_DEPTH:
                return entries
            entries.append(key)
        if len(rows) < page:
            return entries
        offset += page


@dataclass
class Undone:
    """What an undo did: ``round`` is the reopened round to decide again (the picture the
    moderator looked at, for a group); ``others`` the further group decisions undone with it;
    ``left`` why the rest of the group could not be undone."""

    round: ReviewRound
    others: int = 0
    left: list[str] = field(default_factory=list)


def decision_undo(*, moderator: AbstractBaseUser, decision_id: int | None = None) -> ReviewRound:
    """Take back one of the moderator's last :data:`UNDO_DEPTH` decisions (the newest standing one
    when ``decision_id`` is None); see :func:`decision_undo_entry`. Returns the round to decide again."""
    return decision_undo_entry(moderator=moderator, decision_id=decision_id).round


def decision_undo_entry(*, moderator: AbstractBaseUser, decision_id: int | None = None) -> Undone:
    """Take back one of the moderator's last :data:`UNDO_DEPTH` entries (the newest when
    ``decision_id`` is None): a decision, or a group decision, whose standing decisions are each
    undone (those someone reviewed since are left, and said why).

    The Decision row stays (it is append-only): its round becomes ``undone``, the upload returns to
    the state it had before, and a new round of the same kind opens, already claimed by the
    moderator, who decides it again. Refused once anyone else has decided the upload since.
    """
    recent = decisions_recent(moderator=moderator)
    if decision_id is None:
        if not recent:
            raise DecisionConflict("Nothing to undo.")
        decision = recent[0]
    else:
        mine = Decision.objects.filter(pk=decision_id, moderator=moderator).select_related("round").first()
        decision = next(
            (d for d in recent if d.pk == decision_id or (mine and d.group and d.group == mine.group)), None
        )
        if decision is None:
            if mine is not None and mine.round.status == ReviewRound.Status.UNDONE:
                raise DecisionConflict("That decision was already undone.")
            raise DecisionConflict(
                f"Only your last {UNDO_DEPTH} decisions can be undone; reopen older ones from My decisions."
            )
    if decision.group is None:
        return Undone(round=_undo(decision, moderator))
    members = (
        Decision.objects.filter(moderator=moderator, group=decision.group, round__status=ReviewRound.Status.DECIDED)
        .exclude(pk=decision.pk)
        .select_related("round")
        .order_by("id")
    )
    reopened, left = [], []
    for member in [decision, *members]:
        try:
            reopened.append(_undo(member, moderator))
        except DecisionConflict as exc:
            left.append(str(exc))
    if not reopened:
        raise DecisionConflict(left[0])
    return Undone(round=reopened[0], others=len(reopened) - 1, left=left)


def _undo(decision: Decision, moderator: AbstractBaseUser) -> ReviewRound:
    now = timezone.now()
    with transaction.atomic():
        upload = (
            Upload.objects.select_for_update(of=("self",)).select_related("score", "policy").get(pk=decision.upload_id)
        )
        later = ReviewRound.objects.filter(upload=upload, number__gt=decision.round.number)
        if later.exclude(status__in=[ReviewRound.Status.OPEN, ReviewRound.Status.CANCELLED]).exists():
            raise DecisionConflict("This image was reviewed again since; it can no longer be undone.")
        if (
            later.filter(status=ReviewRound.Status.OPEN)
            .exclude(claimed_by__isnull=True)
            .exclude(lease_expires_at__lte=now)
            .exists()
        ):
            raise DecisionConflict("Another moderator is reviewing this image now; it can no longer be undone.")
        undone = ReviewRound.objects.filter(pk=decision.round_id, status=ReviewRound.Status.DECIDED).update(
            status=ReviewRound.Status.UNDONE
        )
        if undone != 1:
            raise DecisionConflict("That decision was already undone.")
        later.filter(status=ReviewRound.Status.OPEN).update(status=ReviewRound.Status.CANCELLED, closed_at=now)
        known_image_forget(upload=upload)
        if decision.upload_status_before in Upload.AWAITING_HUMAN:
            decided_at = None
        elif decision.upload_decided_by_before == Upload.DecidedBy.AUTO:
            decided_at = upload.routed_at
        else:
            decided_at = upload.decided_at
        Upload.objects.filter(pk=upload.pk).update(
            status=decision.upload_status_before,
            decided_by=decision.upload_decided_by_before,
            decided_at=decided_at,
            updated_at=now,
        )
        outcome_announce(upload_id=upload.pk)
        upload.refresh_from_db()
        return round_open(
            upload=upload,
            reason=decision.round.reason,
            excluded_moderator=decision.round.excluded_moderator,
            reopened_from=decision.round,
            claimed_by=moderator,
            lease_expires_at=lease_until(now),
        )
