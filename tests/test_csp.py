"""The CSP header built once from settings (config.csp) is the header django-csp builds."""

from __future__ import annotations

import pytest
from csp.constants import NONCE
from csp.decorators import csp_update
from csp.utils import build_policy
from django.http import HttpResponse
from django.test import RequestFactory

from config.csp import SettingsPolicyCSPMiddleware


def _through_middleware(view, path: str = "/anything/") -> HttpResponse:
    middleware = SettingsPolicyCSPMiddleware(view)
    return middleware(RequestFactory().get(path))


def test_a_plain_response_gets_the_settings_policy():
    response = _through_middleware(lambda request: HttpResponse("ok"))

    assert response["Content-Security-Policy"] == build_policy()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "Content-Security-Policy-Report-Only" not in response


def test_a_changed_setting_changes_the_header(settings):
    _through_middleware(lambda request: HttpResponse("ok"))  # built and kept

    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}
    response = _through_middleware(lambda request: HttpResponse("ok"))

    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response["Content-Security-Policy-Report-Only"] == build_policy(report_only=True)
    assert "img-src 'self'" in response["Content-Security-Policy-Report-Only"]


def test_a_view_decorated_with_csp_update_gets_its_own_policy():
    @csp_update({"img-src": "https://example.org"})
    def view(request):
        return HttpResponse("ok")

    response = _through_middleware(view)

    assert "https://example.org" in response["Content-Security-Policy"]
    assert response["Content-Security-Policy"] != build_policy()


def test_a_response_that_used_the_nonce_carries_it(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"script-src": ["'self'", NONCE]}}
    seen = {}

    def view(request):
        seen["nonce"] = str(request.csp_nonce)
        return HttpResponse("ok")

    response = _through_middleware(view)

    assert f"'nonce-{seen['nonce']}'" in response["Content-Security-Policy"]


def test_excluded_prefixes_and_exempt_responses_get_no_header(settings):
    settings.CONTENT_SECURITY_POLICY = {
        "EXCLUDE_URL_PREFIXES": ["/skip/"],
        "DIRECTIVES": {"default-src": ["'self'"]},
    }

    def exempt(request):
        response = HttpResponse("ok")
        response._csp_exempt = True
        return response

    assert "Content-Security-Policy" not in _through_middleware(
        lambda request: HttpResponse("ok"), "/skip/this/"
    )
    assert "Content-Security-Policy" not in _through_middleware(exempt)


def test_asking_for_the_nonce_after_the_header_is_written_is_an_error():
    from csp.exceptions import CSPNonceError

    request = RequestFactory().get("/anything/")
    SettingsPolicyCSPMiddleware(lambda request: HttpResponse("ok"))(request)

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)
