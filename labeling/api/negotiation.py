"""DRF's content negotiation with the common case answered without parsing.

Nearly every API request (the crowd's task requests above all) accepts anything or JSON and
gets JSON; DRF parses the Accept header into media types and matches each against each
renderer on every request to arrive there. For ``Accept: */*``, ``application/json`` or none,
with no ``?format=`` and no format suffix, this returns what DRF's negotiation returns (the
first renderer when it is JSON, as ``application/json``) directly; anything else is DRF's.
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

_PLAIN = frozenset({"*/*", "application/json"})


class JSONFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        if (
            not format_suffix
            and renderers
            and renderers[0].media_type == "application/json"
            and request.META.get("HTTP_ACCEPT", "*/*") in _PLAIN
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], "application/json"
        chosen: tuple[BaseRenderer, str] = super().select_renderer(
            request, renderers, format_suffix
        )
        return chosen
