from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from hashes.models import HashEntry, HashList, HashMatch
from hashes.services.lists import hash_list_create, hash_list_import
from tests.hashes.conftest import hex_hash

pytestmark = pytest.mark.django_db
A, B = hex_hash(1), hex_hash(2)


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def industry():
    hash_list = hash_list_create(name="industry", action="reject", category="weapon")
    hash_list_import(hash_list=hash_list, data=f"{A} csam\n{B}\n", fmt="pdq")
    return hash_list


def test_the_list_page_shows_entry_and_match_counts(staff, industry, rejected_by_human):
    upload = rejected_by_human((A, 100))
    HashMatch.objects.create(
        upload=upload, hash_list=industry, list_name="industry", action="reject", pdq=A, distance=0
    )
    hash_list_create(name="empty")
    response = staff.get(reverse("admin:hashes_hashlist_changelist"))
    assert response.status_code == 200
    rows = {row.name: (row.entry_count, row.match_count) for row in response.context["cl"].result_list}
    assert rows == {"industry": (2, 1), "empty": (0, 0)}
    assert reverse("admin:hashes_hashlist_own_export", args=["hma"]) in response.content.decode()


def test_adding_a_list_checks_the_category(staff, admin_user):
    url = reverse("admin:hashes_hashlist_add")
    form = {"name": "team", "description": "", "action": "queue", "category": "nope", "enabled": "on"}
    response = staff.post(url, form)
    assert response.status_code == 200 and "Unknown category" in response.content.decode()
    assert staff.post(url, {**form, "category": "weapon"}).status_code == 302
    assert HashList.objects.get().created_by == admin_user


def test_import_a_file_reports_the_counts(staff, industry):
    url = reverse("admin:hashes_hashlist_import", args=[industry.pk])
    assert staff.get(url).status_code == 200
    upload = SimpleUploadedFile("list.csv", f"{A},1,2,2020-01-01,x\n{hex_hash(3)},4,5,2020-01-01,y\n".encode())
    response = staff.post(url, {"file": upload, "format": "auto"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:hashes_hashlist_change", args=[industry.pk])
    assert [str(m) for m in response.context["messages"]] == [
        "industry: 1 added, 1 already in the list, 0 repeated in the file."
    ]
    assert HashEntry.objects.filter(hash_list=industry).count() == 3


def test_a_refused_file_shows_its_bad_lines_and_imports_nothing(staff, industry):
    url = reverse("admin:hashes_hashlist_import", args=[industry.pk])
    upload = SimpleUploadedFile("list.txt", f"{hex_hash(3)}\nbad\n".encode())
    response = staff.post(url, {"file": upload, "format": "pdq"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was imported: the file has 1 bad line(s)" in page
    assert "line 2: a PDQ hash is 64 hex digits; got 3 characters" in page
    assert HashEntry.objects.filter(hash_list=industry).count() == 2


def test_downloads(staff, industry, rejected_by_human):
    response = staff.get(reverse("admin:hashes_hashlist_export", args=[industry.pk, "pdq"]))
    assert response["Content-Disposition"] == f'attachment; filename="hash-list-{industry.pk}.txt"'
    assert b"".join(response.streaming_content).decode() == f"{A} csam\n{B}\n"
    response = staff.get(reverse("admin:hashes_hashlist_export", args=[industry.pk, "hma"]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(response.streaming_content).decode().count("\n") == 2
    assert staff.get(reverse("admin:hashes_hashlist_export", args=[industry.pk, "xml"])).status_code == 404
    rejected_by_human((hex_hash(5), 100), category="hate")
    response = staff.get(reverse("admin:hashes_hashlist_own_export", args=["pdq"]))
    assert b"".join(response.streaming_content).decode() == f"{hex_hash(5)} hate\n"


def test_delete_a_list(staff, industry):
    url = reverse("admin:hashes_hashlist_delete", args=[industry.pk])
    assert "2 entries" in staff.get(url).content.decode()
    assert staff.post(url, {"post": "yes"}).status_code == 302
    assert not HashList.objects.exists() and not HashEntry.objects.exists()


def test_entries_are_found_by_their_hash_and_read_only(staff, industry):
    response = staff.get(reverse("admin:hashes_hashentry_changelist"), {"q": B.upper()})
    assert [entry.pdq for entry in response.context["cl"].result_list] == [B]
    entry = HashEntry.objects.get(pdq=A)
    assert staff.get(reverse("admin:hashes_hashentry_add")).status_code == 403
    assert staff.post(reverse("admin:hashes_hashentry_change", args=[entry.pk]), {"labels": "x"}).status_code == 403
    assert HashEntry.objects.get(pdq=A).labels == "csam"


@pytest.mark.parametrize("name", ["admin:hashes_hashlist_import", "admin:hashes_hashlist_export"])
def test_only_staff(client, moderator, industry, name):
    args = [industry.pk] if name.endswith("import") else [industry.pk, "pdq"]
    client.force_login(moderator)
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_every_change_to_a_list_is_in_the_change_log_and_reaches_platforms(staff, admin_user, industry):
    from accounts.services import api_client_create
    from integrations.models import WebhookDelivery
    from moderation.models import Change

    client, _ = api_client_create(name="platform")
    client.webhook_url = "https://platform.example/hook"
    client.save(update_fields=["webhook_url"])
    change_url = reverse("admin:hashes_hashlist_change", args=[industry.pk])
    form = {"name": "industry", "description": "", "action": "queue", "category": "weapon", "enabled": ""}

    assert staff.post(change_url, form).status_code == 302
    assert staff.post(reverse("admin:hashes_hashlist_delete", args=[industry.pk]), {"post": "yes"}).status_code == 302

    summaries = list(Change.objects.filter(action="hash_list").order_by("id").values_list("summary", "actor"))
    assert [s for s, _ in summaries] == [
        "Hash list \u201cindustry\u201d created (reject automatically, category weapon)",
        "Hash list \u201cindustry\u201d took 2 new hashes from a file (reject automatically, category weapon)",
        "Hash list \u201cindustry\u201d changed (action, enabled) (queue for a human, with a banner, disabled, "
        "category weapon)",
        "Hash list \u201cindustry\u201d deleted with its 2 hashes (queue for a human, with a banner, disabled, "
        "category weapon)",
    ]
    assert [actor for _, actor in summaries[2:]] == [admin_user.pk, admin_user.pk]
    assert WebhookDelivery.objects.filter(client=client, event="policy.changed").count() == 2
