"""An upload's PDQ hashes against the hash lists, when the worker routes it.

Each scored frame's hash (quality at least ``VIGIL_PDQ_MIN_QUALITY``) is looked up in the enabled
lists; what the strongest matching list says decides: ``reject`` rejects the upload whatever the
model said, ``queue`` keeps it from automatic approval (a human decides, the list named on the
review page), ``tag`` only records the match. Every match is recorded (:class:`HashMatch`), with
the list's name and action as they were. A frame the hasher failed on keeps the upload from
automatic approval too: no list was checked for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings

from hashes.models import HashEntry, HashList, HashMatch, UploadHash, chunk_fields
from hashes.pdq import PdqHash
from hashes.selectors import list_matches
from moderation.routing import Route, RoutingOutcome

UNHASHED_REASON = "its PDQ hash could not be computed, so no hash list was checked: a human decides"
STRENGTH = {HashList.Action.REJECT: 2, HashList.Action.QUEUE: 1, HashList.Action.TAG: 0}


@dataclass(frozen=True)
class ListMatch:
    entry: HashEntry
    distance: int
    frame: int

    @property
    def hash_list(self) -> HashList:
        return self.entry.hash_list

    def describe(self) -> str:
        what = f"hash list \u201c{self.hash_list.name}\u201d"
        if self.hash_list.category:
            what += f" ({self.hash_list.category})"
        where = f", frame {self.frame}" if self.frame else ""
        return f"{what}, PDQ distance {self.distance}{where}"


def upload_list_matches(*, hashes: list[tuple[int, PdqHash]]) -> list[ListMatch]:
    """The enabled lists' entries that ``hashes`` (an upload's frames) match, strongest action then
    nearest first; one match per entry (its nearest frame). Hashes below the quality floor are not
    looked up (a flat picture matches too much to act on); a hash repeated across frames once."""
    best: dict[int, ListMatch] = {}
    looked_up: set[str] = set()
    for frame, hashed in hashes:
        if hashed.quality < settings.VIGIL_PDQ_MIN_QUALITY or hashed.hex in looked_up:
            continue
        looked_up.add(hashed.hex)
        for near in list_matches(hashed.hex):
            found = best.get(near.row.pk)
            if found is None or near.distance < found.distance:
                best[near.row.pk] = ListMatch(near.row, near.distance, frame)
    return sorted(best.values(), key=lambda m: (-STRENGTH[m.hash_list.action], m.distance, m.entry.pk))


def lists_outcome(outcome: RoutingOutcome, matches: list[ListMatch], *, unhashed: int = 0) -> RoutingOutcome:
    """The routing after the lists had their say: a reject list's match rejects; a queue list's
    match (or a frame that could not be hashed) turns an automatic approval into a human's
    decision; tags change nothing."""
    strongest = matches[0] if matches else None
    if strongest is not None and strongest.hash_list.action == HashList.Action.REJECT:
        return RoutingOutcome(Route.REJECT, f"matches {strongest.describe()}")
    if outcome.route != Route.APPROVE:
        return outcome
    if strongest is not None and strongest.hash_list.action == HashList.Action.QUEUE:
        return RoutingOutcome(Route.QUEUE, f"matches {strongest.describe()}: a human decides")
    if unhashed:
        return RoutingOutcome(Route.QUEUE, UNHASHED_REASON)
    return outcome


def upload_hashes_store(*, upload_id: uuid.UUID, hashes: list[tuple[int, PdqHash]]) -> None:
    """Keep the upload's frame hashes (review-queue grouping, exports of what moderators rejected).
    A frame already stored (a redelivered task) is left as it is."""
    UploadHash.objects.bulk_create(
        [
            UploadHash(upload_id=upload_id, frame=frame, pdq=h.hex, quality=h.quality, **chunk_fields(h.hex))
            for frame, h in hashes
        ],
        ignore_conflicts=True,
    )


def hash_matches_record(*, upload_id: uuid.UUID, matches: list[ListMatch]) -> list[HashMatch]:
    return HashMatch.objects.bulk_create(
        [
            HashMatch(
                upload_id=upload_id,
                hash_list=m.hash_list,
                entry=m.entry,
                list_name=m.hash_list.name,
                action=m.hash_list.action,
                category=m.hash_list.category,
                labels=m.entry.labels,
                pdq=m.entry.pdq,
                distance=m.distance,
                frame=m.frame,
            )
            for m in matches
        ]
    )


def upload_hashes_stored(*, upload_id: uuid.UUID) -> list[tuple[int, PdqHash]]:
    """The frame hashes an earlier attempt stored (an upload scored again without a new decode)."""
    rows = UploadHash.objects.filter(upload_id=upload_id).order_by("frame")
    return [(row.frame, PdqHash(row.pdq, row.quality)) for row in rows]
