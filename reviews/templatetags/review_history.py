"""The upload page's human history, rendered by ``reviews`` (``moderation`` never imports it)."""

from __future__ import annotations

from django import template

from accounts.roles import Role, user_has_role
from moderation.models import Upload
from reviews.models import ReviewRound
from reviews.selectors.history import rounds_of

register = template.Library()


@register.inclusion_tag("reviews/_upload_history.html", takes_context=True)
def upload_review_history(context, upload: Upload) -> dict:
    """Every round and decision of ``upload`` for moderators and admins, and the reopen form for
    admins when the upload is decided and nothing is open."""
    user = context["request"].user
    if not user_has_role(user, Role.MODERATOR):
        return {"visible": False}
    rounds = rounds_of(upload=upload)
    can_reopen = (
        user_has_role(user, Role.ADMIN)
        and upload.status in (Upload.Status.APPROVED, Upload.Status.REJECTED)
        and not any(r.status == ReviewRound.Status.OPEN for r in rounds)
    )
    return {
        "visible": True,
        "upload": upload,
        "rounds": rounds,
        "can_reopen": can_reopen,
        "csrf_token": context.get("csrf_token"),
    }
