import io
import zipfile

import pytest
from django.urls import reverse

from feedback.models import TrainingRun
from moderation.models import Change, ModelEvent, ModelVersion
from tests.feedback.test_export import decide

PAGES = [("get", "feedback:export", []), ("get", "feedback:training", []), ("post", "feedback:training", [])]
PAGES += [("get", "feedback:models", [])]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "name", "args"), PAGES)
def test_feedback_pages_are_for_admins_only(client, uploader, moderator, admin_user, method, name, args):
    url = reverse(name, args=args)
    assert getattr(client, method)(url).url.startswith(reverse("login"))
    for user in (uploader, moderator):
        client.force_login(user)
        assert getattr(client, method)(url).status_code == 403
    assert not TrainingRun.objects.exists()
    client.force_login(admin_user)
    assert getattr(client, method)(url).status_code == (302 if method == "post" else 200)


@pytest.mark.django_db
def test_export_page_streams_a_zip_and_manifests(client, admin_user, moderator):
    decide(moderator, "harmful")
    decide(moderator, "safe")
    client.force_login(admin_user)
    response = client.get(reverse("feedback:export"), {"format": "zip", "val_fraction": "0.5", "seed": "1"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="vigil-feedback-')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert len([n for n in archive.namelist() if n.endswith(".jpg")]) == 2
    csv_response = client.get(
        reverse("feedback:export"), {"format": "csv", "val_fraction": "0.5", "seed": "1", "label": "safe"}
    )
    lines = b"".join(csv_response.streaming_content).decode().splitlines()
    assert lines[0].startswith("file,label,split,sha256") and len(lines) == 2
    bad = client.get(reverse("feedback:export"), {"format": "zip", "val_fraction": "2", "seed": "1"})
    assert bad.status_code == 400


@pytest.mark.django_db
def test_starting_a_run_queues_one_and_refuses_a_second(client, admin_user):
    client.force_login(admin_user)
    client.post(reverse("feedback:training"), {"force": "1"})
    run = TrainingRun.objects.get()
    assert (run.status, run.trigger, run.requested_by) == ("queued", "admin", admin_user)
    response = client.post(reverse("feedback:training"), follow=True)
    assert "already queued or running" in response.content.decode()
    assert TrainingRun.objects.count() == 1
    fragment = client.get(reverse("feedback:training_run", args=[run.pk]))
    assert 'hx-trigger="every 2s"' in fragment.content.decode()


@pytest.mark.django_db
def test_a_model_action_that_cannot_apply_says_why(client, admin_user):
    from moderation.services.model_versions import model_version_ensure_active

    active = model_version_ensure_active()
    client.force_login(admin_user)
    response = client.post(reverse("feedback:model_action", args=[active.pk]), {"action": "shadow"}, follow=True)
    assert "only candidates go to shadow" in response.content.decode()
    response = client.post(reverse("feedback:model_action", args=[active.pk]), {"action": "rollback"}, follow=True)
    assert "Tick the box to confirm the rollback" in response.content.decode()
    assert "Say why you roll back." in response.content.decode()
    response = client.post(
        reverse("feedback:model_action", args=[active.pk]),
        {"action": "rollback", "confirm": "1", "note": "bad model"},
        follow=True,
    )
    assert "no previously active model version" in response.content.decode()
    assert ModelVersion.objects.get(pk=active.pk).status == "active"
    assert not ModelEvent.objects.filter(actor=admin_user).exists()


@pytest.mark.django_db
def test_admins_see_changes_in_a_banner_until_they_acknowledge_them(client, admin_user, moderator):
    from accounts.roles import Role
    from moderation.services.policies import policy_create
    from tests.factories import make_user

    other_admin = make_user(Role.ADMIN, username="other-admin")
    thresholds = {
        "weapon": {"approve_below": 0.1, "reject_from": 0.9},
        "nudity": {"approve_below": 0.2, "reject_from": 0.8},
    }
    first = policy_create(thresholds=thresholds, reason="fewer rejects", created_by=other_admin)
    client.force_login(admin_user)
    page = client.get(reverse("feedback:models")).content.decode()
    assert 'id="changes-banner"' in page and "1 change to what routes uploads" in page
    assert f"Policy v{first.version} saved by other-admin: nudity 0.2–0.8; weapon 0.1–0.9." in page
    newest = Change.objects.get().pk

    # A change recorded after the banner was drawn stays unseen after the acknowledgement.
    later = policy_create(thresholds=thresholds, reason="same again", created_by=other_admin)
    response = client.post(
        reverse("feedback:changes_acknowledge"), {"up_to": newest, "next": reverse("feedback:models")}
    )
    assert response.url == reverse("feedback:models")
    page = client.get(reverse("feedback:models")).content.decode()
    assert f"Policy v{later.version} saved" in page and f"Policy v{first.version} saved" not in page
    client.post(reverse("feedback:changes_acknowledge"), {"up_to": 10**9, "next": "https://evil.example/"})
    assert 'id="changes-banner"' not in client.get(reverse("feedback:models")).content.decode()
    history = client.get(reverse("feedback:changes")).content.decode()
    assert "fewer rejects" in history and "same again" in history

    # Each admin acknowledges for themselves; moderators never see the banner.
    client.force_login(other_admin)
    assert "2 changes to what routes uploads" in client.get(reverse("feedback:models")).content.decode()
    client.force_login(moderator)
    assert 'id="changes-banner"' not in client.get(reverse("reviews:queue")).content.decode()


@pytest.mark.django_db
def test_rollback_is_offered_only_when_there_is_something_to_roll_back_to(client, admin_user):
    from moderation.services.model_versions import model_version_ensure_active

    model_version_ensure_active()
    client.force_login(admin_user)
    page = client.get(reverse("feedback:models")).content.decode()
    assert 'id="rollback"' not in page and 'value="rollback"' not in page


@pytest.mark.django_db
def test_the_training_page_says_whether_runs_rehearse_a_base_dataset(client, admin_user, settings, tmp_path):
    client.force_login(admin_user)
    settings.VIGIL_RETRAIN_BASE_DATA = ""
    page = client.get(reverse("feedback:training")).content.decode()
    assert "No base dataset configured" in page and "VIGIL_RETRAIN_BASE_DATA" in page
    settings.VIGIL_RETRAIN_BASE_DATA = str(tmp_path / "base")
    page = client.get(reverse("feedback:training")).content.decode()
    assert f"also trains on the base dataset <code>{tmp_path / 'base'}</code>" in page
    assert "No base dataset configured" not in page
    assert "auto-approves at most 0 harmful image(s) that the active model kept for a human" in page


def test_the_models_page_shows_each_versions_calibration(client, admin_user):
    from moderation.services.model_versions import model_version_ensure_active

    baseline = model_version_ensure_active()
    calibration = {
        "temperature": 1.3398,
        "val_ece_before": 0.0812,
        "val_ece_after": 0.0213,
        "fitted_on": "val, early-stopped model",
        "note": "",
    }
    for name, metrics in (("calibrated", {"calibration": calibration}), ("older", {})):
        ModelVersion.objects.create(
            name=name, architecture="harmfulnet", weights="w", weights_sha256=name[0] * 64, metrics=metrics
        )
    client.force_login(admin_user)
    page = client.get(reverse("feedback:models")).content.decode()
    rows = {name: page.split(f"<td>{name}<br>")[1].split("</tr>")[0] for name in ("calibrated", "older", baseline.name)}
    assert "T 1.340 · val ECE 0.021" in rows["calibrated"] and "(0.081 uncalibrated)" in rows["calibrated"]
    assert "not calibrated (trained before calibration: T = 1)" in rows["older"]
    assert "ECE" not in rows[baseline.name] and "not calibrated" not in rows[baseline.name]
