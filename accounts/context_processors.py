from django.http import HttpRequest

from accounts.roles import Role, user_has_role


def roles(request: HttpRequest) -> dict:
    user = request.user
    return {
        "is_moderator": user_has_role(user, Role.MODERATOR),
        "is_admin": user_has_role(user, Role.ADMIN),
    }
