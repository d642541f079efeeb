"""Decide once, from the worker's own hashes: real photos uploaded several times (re-encoded,
resized, a border trimmed) are scored by the worker, queued, and grouped on the review page; a
different photo is not (real baseline model, in-process)."""

from __future__ import annotations

import pytest
from PIL import Image

from moderation.models import Upload
from moderation.services.policies import policy_create, policy_current
from moderation.services.scoring import upload_score
from reviews.models import Decision, ReviewRound
from reviews.selectors.copies import round_near_copies
from reviews.services.claims import round_claim
from reviews.services.group_decisions import decisions_create_group
from tests.factories import make_upload
from tests.images import encode, photo

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_worker_s_hashes_group_copies_of_one_photo_and_one_decision_covers_them(uploader, moderator):
    thresholds = {name: {"approve_below": 0.0, "reject_from": 1.0} for name in policy_current().thresholds}
    policy_create(thresholds=thresholds, reason="tests: everything to humans")
    astronaut = photo("astronaut")
    variants = [
        encode(astronaut, "JPEG", quality=85),
        encode(astronaut.resize((300, 300), Image.Resampling.LANCZOS), "JPEG", quality=60),
        encode(astronaut.crop((5, 5, 507, 507)), "PNG"),
        encode(astronaut, "WEBP", quality=50),
    ]
    uploads = [make_upload(uploader, data) for data in variants]
    other = make_upload(uploader, encode(photo("coffee"), "JPEG"))
    for upload in [*uploads, other]:
        upload_score(upload_id=upload.pk)
    assert set(Upload.objects.values_list("status", flat=True)) == {Upload.Status.QUEUED}
    lead = round_claim(round_id=ReviewRound.objects.get(upload=uploads[0]).pk, moderator=moderator)

    members = round_near_copies(round_=lead, moderator=moderator)

    assert {m.upload_id for m in members} == {u.pk for u in uploads[1:]}
    result = decisions_create_group(
        round_id=lead.pk, member_ids=[m.pk for m in members], moderator=moderator, label="harmful"
    )
    assert len(result.members) == 3 and not result.skipped
    assert Decision.objects.filter(group=result.group).count() == 4
    assert Upload.objects.filter(status=Upload.Status.REJECTED).count() == 4
    assert Upload.objects.get(pk=other.pk).status == Upload.Status.QUEUED
