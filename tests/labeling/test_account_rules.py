"""One username rule for the API and the HTML forms, and resume only for workers."""

from __future__ import annotations

import pytest
from django.contrib.auth.validators import UnicodeUsernameValidator

from labeling.models import User, WorkerProfile
from labeling.services import accounts
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-pass-31"
INVISIBLE = (
    "A username can't hold invisible or control characters (line breaks, zero-width or "
    "right-to-left marks)."
)
DJANGO = UnicodeUsernameValidator.message
DOTS = "A username can't hold two dots in a row."
REFUSED = [
    ("<img src=x onerror=alert(1)>", DJANGO),
    ("zero\u200bwidth", INVISIBLE),
    ("joined\u200dname", INVISIBLE),
    ("evil\u202etxt.exe", INVISIBLE),
    ("isolate\u2067name", INVISIBLE),
    ("line\nbreak", INVISIBLE),
    ("line\u2028sep", INVISIBLE),
    ("para\u2029sep", INVISIBLE),
    ("bell\x07", INVISIBLE),
    ("a b/../c", DJANGO),
    ("a/b", DJANGO),
    ("up..here", DOTS),
    ("..", DOTS),
]


@pytest.mark.parametrize(("username", "message"), REFUSED)
def test_the_api_refuses_the_username_and_writes_nothing(curator_api, username, message):
    response = curator_api.post(
        "/api/workers/", {"username": username, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"username": [message]}
    assert list(User.objects.values_list("username", flat=True)) == ["cora"]


@pytest.mark.parametrize(("username", "message"), REFUSED)
def test_the_form_refuses_the_username_and_writes_nothing(client, curator, username, message):
    client.force_login(curator)

    response = client.post(
        "/curate/workers/",
        {"action": "worker", "worker-username": username, "worker-password": PASSWORD},
    )

    assert response.status_code == 200
    assert response.context["worker_form"].errors == {"username": [message]}
    assert list(User.objects.values_list("username", flat=True)) == ["cora"]


@pytest.mark.parametrize(("username", "message"), REFUSED)
def test_every_account_service_applies_the_rule(settings, username, message):
    settings.CROWDNET_OPEN_SIGNUP = True

    with pytest.raises(accounts.ValidationError) as refused:
        accounts.signup(username=username, password=PASSWORD)

    assert refused.value.message_dict == {"username": [message]}
    assert not User.objects.exists()


@pytest.mark.parametrize("username", ["ann", "Zoë", "j.doe+crowd@example", "李小龙", "a-b_c.d"])
def test_ordinary_usernames_pass_both_ways(curator_api, client, curator, username):
    api = curator_api.post(
        "/api/workers/", {"username": username, "password": PASSWORD}, format="json"
    )
    assert api.status_code == 201
    User.objects.filter(username=username).delete()
    client.force_login(curator)

    page = client.post(
        "/curate/workers/",
        {"action": "worker", "worker-username": username, "worker-password": PASSWORD},
    )

    assert page.status_code == 302
    assert User.objects.get(username=username).role == "worker"


def test_resume_finds_only_workers_like_pause(curator_api, curator):
    other = UserFactory(username="cleo", role="curator")

    resume = curator_api.post(f"/api/workers/{other.pk}/resume/")
    pause = curator_api.post(f"/api/workers/{other.pk}/pause/", {"reason": "x"}, format="json")

    assert (resume.status_code, pause.status_code) == (404, 404)
    assert not WorkerProfile.objects.exists()


@pytest.mark.parametrize("username", ["\uff43\uff4f\uff52\uff41", "\uff23ora", "COR\u1d2c"])
def test_a_name_that_normalises_to_a_taken_one_is_refused(curator_api, username):
    # Django stores usernames NFKC-normalised: a full-width "cora" is stored as "cora".
    response = curator_api.post(
        "/api/workers/", {"username": username, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"username": ["That username is taken; choose another."]}
    assert list(User.objects.values_list("username", flat=True)) == ["cora"]


def test_an_account_is_stored_under_the_name_it_was_checked_as(settings):
    settings.CROWDNET_OPEN_SIGNUP = True

    user = accounts.signup(username="\ufb01sh", password=PASSWORD)

    assert user.username == "fish"
    assert list(User.objects.values_list("username", flat=True)) == ["fish"]


def test_the_admin_applies_the_rule_when_adding_and_renaming(admin_client):
    admin = User.objects.get(username="admin")
    added = admin_client.post(
        "/admin/labeling/user/add/",
        {
            "username": "up..here",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "usable_password": "true",
        },
    )
    renamed = admin_client.post(
        f"/admin/labeling/user/{admin.pk}/change/",
        {
            "username": "up..here",
            "role": "curator",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
        },
    )

    assert added.status_code == renamed.status_code == 200
    assert added.context["adminform"].form.errors == {"username": [DOTS]}
    assert renamed.context["adminform"].form.errors == {"username": [DOTS]}
    assert list(User.objects.values_list("username", flat=True)) == ["admin"]
