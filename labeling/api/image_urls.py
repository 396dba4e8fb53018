"""Signed, expiring image URLs, so that API clients without a session can load the images a
task shows; and who is asking for an image.

A signed URL carries ``?sig=<user id>:<timestamp>:<signature>``, made with the secret key over
the URL's path, so it names one image for one user and cannot be moved to another image. It
is good for CROWDNET_IMAGE_URL_SECONDS. A signed-in caller (session or API token) is always
judged as themselves, so a signature shows them nothing they couldn't see anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.signing import BadSignature, TimestampSigner
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import AuthenticationFailed

from labeling.api.authentication import TokenAuthentication
from labeling.models import User

_SALT = "crowdnet.image-url"


def _signer(path: str) -> TimestampSigner:
    return TimestampSigner(salt=f"{_SALT}:{path}")


def image_url_sign(path: str, user_id: int) -> str:
    """``path`` (an image URL from reverse()) with a signature good for that user only."""
    return f"{path}?{urlencode({'sig': _signer(path).sign(str(user_id))})}"


def image_url_user(request: HttpRequest) -> User | None:
    """The active user this request's ``sig`` was made for, if it is genuine, made for this
    path and younger than CROWDNET_IMAGE_URL_SECONDS; else None."""
    try:
        value = _signer(request.path).unsign(
            request.GET.get("sig", ""), max_age=settings.CROWDNET_IMAGE_URL_SECONDS
        )
    except BadSignature:  # SignatureExpired too
        return None
    if not value.isdigit():
        return None
    return User.objects.filter(pk=int(value), is_active=True).first()


def _caller(request: HttpRequest) -> User | None:
    """The session's user, else the API token's; AuthenticationFailed for a bad token."""
    if request.user.is_authenticated:
        return request.user  # type: ignore[return-value]
    found = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    return found[0] if found else None


def image_viewer(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Set ``request.user`` to who may see images: the signed-in caller (session or
    ``Authorization: Token``), else a signed URL's user. A bad token is 401, a forged or
    expired signature 403; with neither, browsers go to the login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            caller = _caller(request)
        except AuthenticationFailed as failed:
            return HttpResponse(str(failed.detail), status=401, content_type="text/plain")
        if caller is None and "sig" in request.GET:
            caller = image_url_user(request)
            if caller is None:
                return HttpResponse(
                    "This image link is invalid or has expired; ask the API for the task again.",
                    status=403,
                    content_type="text/plain",
                )
        if caller is None:
            return redirect_to_login(request.get_full_path())
        request.user = caller
        return view(request, *args, **kwargs)

    return wrapper
