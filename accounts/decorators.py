from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from accounts.roles import Role, user_has_role


def role_required(role: Role):
    """Sign-in required (a redirect to the login page), then ``role`` or above (else 403)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not user_has_role(request.user, role):
                raise PermissionDenied(f"{role.value.capitalize()}s only.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


moderator_required = role_required(Role.MODERATOR)
admin_required = role_required(Role.ADMIN)
