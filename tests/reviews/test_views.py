import pytest
from django.urls import reverse

from moderation.models import Upload
from reviews.models import Decision
from tests.factories import make_upload


def queued(uploader, n=1):
    uploads = [make_upload(uploader) for _ in range(n)]
    Upload.objects.filter(pk__in=[u.pk for u in uploads]).update(status=Upload.Status.QUEUED)
    return uploads


@pytest.mark.django_db
def test_queue_lists_items_waiting_for_humans(client, uploader, moderator):
    waiting = queued(uploader, 2)
    make_upload(uploader)  # pending: not for humans yet
    client.force_login(moderator)
    response = client.get(reverse("reviews:queue"))
    assert response.status_code == 200
    assert response.context["total"] == 2
    assert [u.pk for u in response.context["page"]] == [u.pk for u in waiting]


@pytest.mark.django_db
def test_uploader_cannot_see_the_queue_and_anonymous_is_sent_to_login(client, uploader):
    item = queued(uploader)[0]
    response = client.get(reverse("reviews:queue"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.force_login(uploader)
    assert client.get(reverse("reviews:queue")).status_code == 403
    assert client.post(reverse("reviews:item", args=[item.pk]), {"label": "safe"}).status_code == 403
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_moderator_decides_and_moves_to_the_next_item(client, uploader, moderator):
    first, second = queued(uploader, 2)
    client.force_login(moderator)
    page = client.get(reverse("reviews:item", args=[first.pk]))
    assert page.status_code == 200
    assert reverse("moderation:upload_image", args=[first.pk]) in page.content.decode()
    response = client.post(reverse("reviews:item", args=[first.pk]), {"label": "harmful", "time_spent_ms": "2100"})
    assert response.status_code == 302 and response.url == reverse("reviews:item", args=[second.pk])
    decision = Decision.objects.get()
    assert (decision.upload_id, decision.label, decision.moderator, decision.time_spent_ms) == (
        first.pk,
        "harmful",
        moderator,
        2100,
    )
    assert Upload.objects.get(pk=first.pk).status == "rejected"


@pytest.mark.django_db
def test_deciding_an_already_decided_item_warns_and_stores_nothing(client, uploader, moderator):
    item = queued(uploader)[0]
    client.force_login(moderator)
    client.post(reverse("reviews:item", args=[item.pk]), {"label": "safe"})
    response = client.post(reverse("reviews:item", args=[item.pk]), {"label": "harmful"}, follow=True)
    assert "already decided" in response.content.decode()
    assert Decision.objects.count() == 1
    assert Upload.objects.get(pk=item.pk).status == "approved"


@pytest.mark.django_db
def test_invalid_label_is_a_400(client, uploader, moderator):
    item = queued(uploader)[0]
    client.force_login(moderator)
    assert client.post(reverse("reviews:item", args=[item.pk]), {"label": "meh"}).status_code == 400
    assert not Decision.objects.exists()
