"""Accounts: curators create workers or invite them; open sign-up when the setting allows."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import Invitation, User
from labeling.usernames import validate_username


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_new_user(username: str, password: str) -> None:
    """Raise ValidationError by field unless ``username`` (already NFKC-normalised, as it will
    be stored) is allowed and free in any case, and ``password`` is strong enough."""
    try:
        validate_username(username)
    except ValidationError as error:
        raise ValidationError({"username": error.messages}) from None
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "That username is taken; choose another."})
    try:
        validate_password(password, User(username=username))
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from None


def user_create(
    *, username: str, password: str, role: str = User.Role.WORKER, email: str = ""
) -> User:
    """Create an active account with a validated password; writes one user.

    The name is checked as Django stores it (NFKC-normalised), so a full-width "cora" is taken
    when "cora" exists, instead of failing on the unique constraint."""
    username = User.normalize_username(username)
    _check_new_user(username, password)
    return User.objects.create_user(username=username, password=password, email=email, role=role)


def worker_create(*, created_by: User, username: str, password: str, email: str = "") -> User:
    """A curator creates a worker account; writes one user."""
    if not created_by.is_curator:
        raise PermissionDenied("Only curators create accounts.")
    return user_create(username=username, password=password, email=email)


def invitation_create(
    *, created_by: User, note: str = "", role: str = User.Role.WORKER
) -> tuple[Invitation, str]:
    """A one-time invitation; returns it with the secret token (only its hash is stored)."""
    if not created_by.is_curator:
        raise PermissionDenied("Only curators invite people.")
    if role == User.Role.CURATOR and not created_by.is_staff:
        raise PermissionDenied("Only staff invite curators.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        token=_token_digest(token),
        note=note,
        role=role,
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=settings.CROWDNET_INVITE_DAYS),
    )
    return invitation, token


def invitation_find(token: str) -> Invitation | None:
    """The open, unexpired invitation for this token, if any."""
    return Invitation.objects.filter(
        token=_token_digest(token), used_by__isnull=True, expires_at__gt=timezone.now()
    ).first()


def invitation_accept(*, token: str, username: str, password: str) -> User:
    """Create the invited account and spend the invitation; writes a user and the invitation."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(token=_token_digest(token), used_by__isnull=True)
            .first()
        )
        if invitation is None or invitation.expires_at <= timezone.now():
            raise ValidationError("This invitation link is used or expired; ask for a new one.")
        user = user_create(username=username, password=password, role=invitation.role)
        invitation.used_by = user
        invitation.used_at = timezone.now()
        invitation.save(update_fields=["used_by", "used_at"])
    return user


def signup(*, username: str, password: str, email: str = "") -> User:
    """Open sign-up as a worker, only when CROWDNET_OPEN_SIGNUP is on."""
    if not settings.CROWDNET_OPEN_SIGNUP:
        raise PermissionDenied("Sign-up is closed; ask a curator for an invitation.")
    return user_create(username=username, password=password, email=email)
