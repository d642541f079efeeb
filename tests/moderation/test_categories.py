"""Team-defined harmful categories: seeded from the setting, added by admins, offered to
moderators in order, and shown on the threshold page at a cold start that sends them to humans."""

import re

import pytest
from django.conf import settings
from django.urls import reverse

from moderation.models import Category
from moderation.routing import Route, route_scores
from moderation.services.categories import category_keys
from moderation.services.policies import policy_current
from reviews.models import Decision
from tests.factories import make_round


@pytest.mark.django_db
def test_the_migration_seeds_the_setting_in_order():
    assert list(Category.objects.values_list("key", flat=True)) == list(settings.VIGIL_REVIEW_CATEGORIES)
    assert Category.objects.get(key="weapon").name == "Weapon"
    assert category_keys() == ["weapon", "nudity", "violence", "hate", "other"]


@pytest.mark.django_db
def test_an_admin_adds_a_category_in_the_admin_and_moderators_tag_with_it(client, admin_user, moderator):
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:moderation_category_add"),
        {"key": "drugs", "name": "Drugs", "position": "9", "learn_from_labels": "40", "active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    added = Category.objects.get(key="drugs")
    assert (added.name, added.learn_from_labels, added.active) == ("Drugs", 40, True)
    # The key is fixed once saved: decisions and policies store it.
    change = client.get(reverse("admin:moderation_category_change", args=[added.pk])).content.decode()
    assert 'name="key"' not in change

    round_ = make_round()
    client.force_login(moderator)
    page = client.get(reverse("reviews:round", args=[round_.pk])).content.decode()
    # Sixth by position: key 6, after the five seeded ones.
    assert re.search(r'value="drugs"\s*> <kbd>6</kbd> Drugs', page)
    assert re.search(r'value="other"\s*checked>', page)  # still the default for an untagged reject
    response = client.post(reverse("reviews:decide", args=[round_.pk]), {"label": "harmful", "category": "drugs"})
    assert response.status_code == 302
    assert Decision.objects.get().category == "drugs"


@pytest.mark.django_db
def test_an_inactive_category_is_no_longer_offered_nor_accepted(client, moderator):
    Category.objects.filter(key="hate").update(active=False)
    round_ = make_round()
    client.force_login(moderator)
    page = client.get(reverse("reviews:round", args=[round_.pk])).content.decode()
    assert 'value="hate"' not in page and 'value="other"' in page
    response = client.post(reverse("reviews:decide", args=[round_.pk]), {"label": "harmful", "category": "hate"})
    assert response.status_code == 400
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_with_every_category_turned_off_the_setting_stands_in():
    Category.objects.update(active=False)
    assert category_keys() == list(settings.VIGIL_REVIEW_CATEGORIES)


@pytest.mark.django_db
def test_a_new_category_starts_on_the_threshold_page_sending_everything_to_humans(client, admin_user):
    Category.objects.create(key="drugs", name="Drugs", position=9)
    client.force_login(admin_user)
    body = client.get(reverse("metrics:thresholds")).content.decode()
    assert '<tr data-category="drugs">' in body
    for bound, value in (("approve_below", "0.0"), ("reject_from", "1.0")):
        tag = re.search(rf'<input type="number" name="{bound}__drugs"[^>]*>', body)[0]
        assert re.search(r'value="([^"]*)"', tag)[1] == value
    # Until an admin sets them, a model scoring the category routes its images to humans.
    policy = policy_current()
    assert "drugs" not in policy.thresholds
    assert route_scores({"weapon": 0.0, "nudity": 0.0, "drugs": 0.0}, policy.thresholds).route == Route.QUEUE
    assert route_scores({"weapon": 0.0, "nudity": 0.0, "drugs": 0.99}, policy.thresholds).route == Route.QUEUE
    # Set on the page, the category's thresholds join the policy.
    data = {f"{b}__{n}": repr(v) for n, t in policy.thresholds.items() for b, v in t.items()}
    data |= {"approve_below__drugs": "0.1", "reject_from__drugs": "0.9", "reason": "drugs routed now"}
    assert client.post(reverse("metrics:thresholds"), data).status_code == 302
    assert policy_current().thresholds["drugs"] == {"approve_below": 0.1, "reject_from": 0.9}
