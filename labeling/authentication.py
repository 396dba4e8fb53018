"""The one authentication backend: Django's, behind the failed-login limits."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from labeling.throttle import login_blocked, login_failed


class ThrottledModelBackend(ModelBackend):
    """Every password check that comes with a request (the login page, the admin's login, the
    API's token endpoint) passes here: a blocked client is refused before its password is
    checked, even the right one, and every failure counts (see labeling.throttle).

    Checks without a request (``manage.py``, the test client's ``login``) are not limited."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if request is None or username is None:
            return super().authenticate(request, username=username, password=password, **kwargs)
        if login_blocked(request, username):
            # authenticate() stops at PermissionDenied and tries no other backend.
            raise PermissionDenied("Too many failed logins.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failed(request, username)
        return user
