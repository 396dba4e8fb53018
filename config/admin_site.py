"""The admin site, whose login obeys the same failed-login limits as every other way in."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse

from labeling.throttle import login_blocked, login_refused


class CrowdNetAdminSite(AdminSite):
    """Django's admin; a blocked client gets the 429 page instead of the login form.

    (The authentication backend refuses it anyway: this only says why.)"""

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if request.method == "POST" and login_blocked(request, request.POST.get("username", "")):
            return login_refused(request)
        response: HttpResponse = super().login(request, extra_context)
        return response


class CrowdNetAdminConfig(AdminConfig):
    default_site = "config.admin_site.CrowdNetAdminSite"
