from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.roles import Role, user_has_role


def routing_changes(request: HttpRequest) -> dict:
    """Admins' banner of changes to the model or policy they have not acknowledged. Lazy: only a
    page that draws the banner (base.html) queries."""
    user = getattr(request, "user", None)
    if user is None or not user_has_role(user, Role.ADMIN):
        return {}
    from moderation.services.changes import changes_unseen

    return {"unseen_changes": SimpleLazyObject(lambda: _Unseen(*changes_unseen(user=user)))}


class _Unseen:
    def __init__(self, count: int, latest: list) -> None:
        self.count, self.latest = count, latest
        self.newest_id = latest[0].pk if latest else 0

    def __bool__(self) -> bool:
        return self.count > 0


def scoring_health(request: HttpRequest) -> dict:
    """Staff's banner when uploads are not getting scored (moderation/services/health.py): no
    scoring worker alive, or uploads pending too long. Lazy, like the changes banner."""
    user = getattr(request, "user", None)
    if user is None or not user_has_role(user, Role.MODERATOR):
        return {}
    from moderation.services.health import scoring_health as health

    return {"scoring_health": SimpleLazyObject(health)}
