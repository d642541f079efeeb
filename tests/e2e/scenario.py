"""What the end-to-end tests share: the policy they route real photos by, and how they post them."""

from django.core.files.uploadedfile import SimpleUploadedFile

from moderation.services.policies import policy_create
from tests.images import photo_jpeg


def policy_queueing_the_astronaut(admin):
    """Chelsea and coffee are far below every threshold and are approved; anything with weapon
    >= 0.002 is queued, so the astronaut photo (weapon ~0.005 on the baseline) reaches humans."""
    return policy_create(
        thresholds={
            "weapon": {"approve_below": 0.002, "reject_from": 0.5},
            "nudity": {"approve_below": 0.2, "reject_from": 0.8},
        },
        reason="e2e",
        created_by=admin,
    )


def post_photos(api, names) -> dict[str, str]:
    """Upload scikit-image photos through the API, each with its name as external_id; returns ids."""
    ids = {}
    for name in names:
        response = api.post(
            "/api/v1/uploads/",
            {"image": SimpleUploadedFile(f"{name}.jpg", photo_jpeg(name)), "external_id": name},
            format="multipart",
        )
        assert response.status_code == 201, response.content
        ids[name] = response.json()["id"]
    return ids
