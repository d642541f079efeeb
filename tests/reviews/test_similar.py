"""The review page's one list of what humans said about this picture: the same upload, the same
file (sha256), or a picture within VIGIL_KNOWN_IMAGE_DISTANCE pHash bits, the rule that routes
near copies. Before, a "Looks like an image humans labelled safe (pHash distance 2)" line sat
above "Earlier decisions on this or a near-identical image: None"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.roles import Role
from moderation.models import Upload
from reviews.selectors.history import similar_decisions
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create, decision_undo
from tests.factories import make_round, make_upload, make_user
from tests.images import solid

pytestmark = pytest.mark.django_db

PHASH = "f0f0f0f0f0f0f0f0"
NEAR = "f0f0f0f0f0f0f0f3"  # 2 bits away
FAR = "0f0f0f0f0f0f0f0f"  # 64 bits away


def upload_with(phash: str, data: bytes) -> Upload:
    upload = make_upload(make_user(), data)
    Upload.objects.filter(pk=upload.pk).update(phash=phash)
    upload.phash = phash
    return upload


def decide(moderator, upload, label):
    round_ = make_round(upload, score=0.5)
    round_claim(round_id=round_.pk, moderator=moderator)
    return decision_create(round_id=round_.pk, moderator=moderator, label=label, category="weapon")


def test_one_list_with_the_same_rule_that_routes_near_copies(client, settings):
    settings.VIGIL_KNOWN_IMAGE_DISTANCE = 4
    ann = make_user(Role.MODERATOR, username="ann")
    bob = make_user(Role.MODERATOR, username="bob")
    near = upload_with(NEAR, solid(color=(9, 9, 9)))
    decide(ann, near, "safe")  # humans labelled the near picture safe
    far = upload_with(FAR, solid(color=(8, 8, 8)))
    decide(ann, far, "harmful")  # a different picture: not listed
    data = solid(color=(200, 10, 10))
    same_file = upload_with(PHASH, data)
    decide(bob, same_file, "harmful")
    decision_undo(moderator=bob)  # undone: listed, marked undone

    upload = upload_with(PHASH, data)
    entries = similar_decisions(upload=upload)
    assert [(e.decision.upload_id, e.relation, e.distance) for e in entries] == [
        (same_file.pk, "same file", 0),
        (near.pk, "near-identical picture", 2),
    ]
    assert [e.standing for e in entries] == [False, True]

    round_ = make_round(upload, score=0.5)
    client.force_login(make_user(Role.MODERATOR, username="cy"))
    page = client.get(reverse("reviews:round", args=[round_.pk])).content.decode()
    assert "Looks like" not in page and "None." not in page
    assert page.count('<ul class="history">') == 1
    assert "safe</strong> by ann" in page and "pHash distance 2" in page
    assert "harmful</strong> (weapon) by bob" in page and "same file" in page and "undone" in page


def test_beyond_the_distance_nothing_is_listed(client, settings):
    settings.VIGIL_KNOWN_IMAGE_DISTANCE = 1
    ann = make_user(Role.MODERATOR, username="ann")
    decide(ann, upload_with(NEAR, solid(color=(1, 1, 1))), "safe")
    upload = upload_with(PHASH, solid(color=(2, 2, 2)))
    assert similar_decisions(upload=upload) == []
    round_ = make_round(upload, score=0.5)
    client.force_login(ann)
    page = client.get(reverse("reviews:round", args=[round_.pk])).content.decode()
    assert "No human has decided this picture, the same file, or one within 1 pHash bit" in page
