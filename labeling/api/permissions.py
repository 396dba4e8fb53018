"""Who may do what through the API."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


class IsCurator(BasePermission):
    """Curators (and staff) only."""

    message = "Only curators can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_curator)


class CuratorWritesOthersRead(BasePermission):
    """Any signed-in user reads; only curators write."""

    message = "Only curators can change this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or request.user.is_curator
