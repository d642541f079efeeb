"""The review page renews its claim every third of the lease (at most every 30 s), and no lease
shorter than the minimum can be saved: lease_seconds=15 with a 30 s heartbeat lost the item."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from reviews.models import MIN_LEASE_SECONDS, QueueSettings, ReviewRound
from reviews.services.claims import lease_heartbeat_seconds, round_claim
from tests.factories import make_round

pytestmark = pytest.mark.django_db


def heartbeat_on_page(html: str) -> int:
    return int(re.search(r'hx-trigger="every (\d+)s"', html).group(1))


@pytest.mark.parametrize(("lease", "heartbeat"), [(15, 5), (60, 20), (90, 30), (120, 30), (3600, 30)])
def test_the_page_renews_a_third_of_the_lease_at_most_every_30_s(client, moderator, lease, heartbeat):
    settings_row = QueueSettings.load()
    settings_row.lease_seconds = lease
    settings_row.save()
    round_ = make_round(score=0.5)
    client.force_login(moderator)
    page = client.get(reverse("reviews:round", args=[round_.pk])).content.decode()
    assert heartbeat_on_page(page) == heartbeat == lease_heartbeat_seconds()
    renewed = client.post(reverse("reviews:lease", args=[round_.pk])).content.decode()
    assert heartbeat_on_page(renewed) == heartbeat  # the fragment that replaces it keeps the rhythm


def test_a_lease_below_the_minimum_is_refused(moderator):
    row = QueueSettings.load()
    row.lease_seconds = MIN_LEASE_SECONDS - 1
    with pytest.raises(ValidationError, match="at least 15 seconds"):
        row.save()
    # A row written around save() is still read as the minimum.
    QueueSettings.objects.filter(pk=1).update(lease_seconds=2)
    round_ = round_claim(round_id=make_round(score=0.5).pk, moderator=moderator)
    held = (round_.lease_expires_at - ReviewRound.objects.get(pk=round_.pk).created_at).total_seconds()
    assert held >= MIN_LEASE_SECONDS - 1
    assert lease_heartbeat_seconds() == 5


def test_the_admin_form_refuses_a_short_lease(admin_user, client):
    client.force_login(admin_user)
    QueueSettings.load()
    response = client.post(
        "/admin/reviews/queuesettings/1/change/",
        {"lease_seconds": 10, "audit_approved_rate": 0, "audit_rejected_rate": 0},
    )
    assert response.status_code == 200 and "greater than or equal to 15" in response.content.decode()
