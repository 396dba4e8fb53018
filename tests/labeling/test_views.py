"""The HTML views: access by role, the no-JavaScript upload, accounts, CSP and login limits."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling.models import Candidate, Category, Image, ImportJob, Invitation, User
from labeling.throttle import LIMITS
from tests.factories import PASSWORD, CategoryFactory, UserFactory, image_bytes

CURATE_PAGES = [
    "curate-upload",
    "curate-scrape",
    "curate-imports",
    "curate-workers",
    "curate-review",
]
JOB_UID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def job_url() -> str:
    return reverse("curate-import", args=[JOB_UID])


@pytest.fixture
def curator_client(client, curator):
    client.force_login(curator)
    return client


@pytest.fixture
def worker_client(client, worker):
    client.force_login(worker)
    return client


# --- who may open what ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["home", *CURATE_PAGES])
def test_anonymous_is_sent_to_login(client, name):
    path = reverse(name)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.django_db
def test_anonymous_is_sent_to_login_from_an_import_job(client):
    response = client.get(job_url())

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={job_url()}"


@pytest.mark.parametrize("name", CURATE_PAGES)
def test_worker_gets_403_on_curator_pages(worker_client, name):
    get = worker_client.get(reverse(name))
    post = worker_client.post(reverse(name), {"action": "worker", "username": "x"})

    assert get.status_code == 403
    assert post.status_code == 403
    assert "Curator pages are for curators only" in get.content.decode()
    assert User.objects.count() == 1


def test_worker_gets_403_on_an_import_job(worker_client, category):
    ImportJob.objects.create(uid=JOB_UID, source="url", category=category)

    assert worker_client.get(job_url()).status_code == 403


def test_worker_home_shows_username_and_placeholder(worker_client):
    response = worker_client.get(reverse("home"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Hello, wendy" in html
    assert "Labeling tasks arrive here" in html
    assert 'href="/curate/upload/"' not in html
    assert f'action="{reverse("logout")}"' in html


def test_curator_home_counts_in_bounded_queries(
    curator_client, category, django_assert_num_queries
):
    CategoryFactory(name="dog", slug="dog")
    # the seventh counts workers paused against their control record (the contested notice)
    with django_assert_num_queries(7):
        response = curator_client.get(reverse("home"))

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["images"] == 0
    assert response.context["categories"] == 2
    assert response.context["states"] == [
        ("Open", 0),
        ("Accepted", 0),
        ("Rejected", 0),
        ("Needs review", 0),
    ]
    for link in ["/curate/upload/", "/curate/scrape/", "/curate/imports/", "/curate/workers/"]:
        assert f'href="{link}"' in html
    assert 'href="/api/docs/"' in html


def test_logout_is_a_post(curator_client):
    assert curator_client.get(reverse("logout")).status_code == 405

    response = curator_client.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in curator_client.session


# --- upload ----------------------------------------------------------------------------------


def test_upload_page_lists_categories_as_a_tree(curator_client, category):
    CategoryFactory(name="Burmese cat", slug="burmese", parent=category)
    CategoryFactory(name="animal", slug="animal")

    response = curator_client.get(reverse("curate-upload"))

    html = response.content.decode()
    assert response.status_code == 200
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', html)
    assert options == [
        ("", "Choose a category…"),
        ("animal", "animal"),
        ("cat", "cat"),
        ("burmese", "\u2003\u2013 Burmese cat"),
    ]
    assert 'data-api-url="/api/imports/upload/"' in html
    assert 'name="files"' in html
    assert "multiple" in html


def test_upload_without_javascript_renders_the_report(curator_client, category):
    jpeg = SimpleUploadedFile("cat.jpg", image_bytes(1), content_type="image/jpeg")
    text = SimpleUploadedFile("notes.txt", b"not an image", content_type="text/plain")

    response = curator_client.post(
        reverse("curate-upload"), {"category": "cat", "files": [jpeg, text]}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert '<p id="summary" class="summary">1 added, 0 duplicates, 1 rejected</p>' in html
    assert [row["outcome"] for row in response.context["rows"]] == ["added", "rejected"]
    assert [row["name"] for row in response.context["rows"]] == ["cat.jpg", "notes.txt"]
    assert Image.objects.count() == 1
    assert Candidate.objects.get().category == category
    assert Image.objects.get().uploader.username == "cora"


def test_upload_without_category_writes_nothing(curator_client, category):
    jpeg = SimpleUploadedFile("cat.jpg", image_bytes(1), content_type="image/jpeg")

    response = curator_client.post(reverse("curate-upload"), {"category": "", "files": [jpeg]})

    assert response.status_code == 200
    assert response.context["form"].errors == {"category": ["This field is required."]}
    assert Image.objects.count() == 0
    assert Candidate.objects.count() == 0


def test_category_names_are_escaped(curator_client):
    CategoryFactory(name="<script>alert(1)</script>", slug="xss")

    html = curator_client.get(reverse("curate-upload")).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


@pytest.mark.parametrize("name", ["login", "signup-closed", "curate-upload", "home"])
def test_pages_carry_a_strict_csp(client, curator, name):
    if name in ("curate-upload", "home"):
        client.force_login(curator)
    path = reverse("signup") if name == "signup-closed" else reverse(name)

    response = client.get(path)

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


def test_pages_have_no_inline_script_or_style(curator_client, category):
    html = curator_client.get(reverse("curate-upload")).content.decode()

    assert re.findall(r"<script[^>]*>", html) == [
        '<script type="module" src="/static/js/nav.js">',
        '<script type="module" src="/static/js/upload.js">',
    ]
    assert "style=" not in html
    assert "<style" not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


# --- scrape and import jobs -------------------------------------------------------------------


def test_scrape_creates_a_job_and_redirects(curator_client, category):
    urls = "https://example.com/a.jpg\n\n# skipped\nhttps://example.com/b.jpg\n"

    response = curator_client.post(reverse("curate-scrape"), {"category": "cat", "urls": urls})

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/curate/imports/{job.uid}/"
    assert job.params == {"urls": ["https://example.com/a.jpg", "https://example.com/b.jpg"]}
    assert (job.source, job.status, job.category, job.created_by.username) == (
        "url",
        "queued",
        category,
        "cora",
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"urls": "", "page_url": ""},
            "Give either a list of image URLs or one page URL, not both.",
        ),
        (
            {"urls": "https://example.com/a.jpg", "page_url": "https://example.com/"},
            "Give either a list of image URLs or one page URL, not both.",
        ),
        (
            {"urls": "ftp://example.com/a.jpg\nhttps://example.com/b.jpg"},
            "These lines are not http(s) addresses: ftp://example.com/a.jpg.",
        ),
    ],
)
def test_scrape_refuses_bad_input_and_writes_nothing(curator_client, category, data, error):
    response = curator_client.post(reverse("curate-scrape"), {"category": "cat", **data})

    assert response.status_code == 200
    form = response.context["form"]
    assert [*form.non_field_errors(), *form.errors.get("urls", [])] == [error]
    assert ImportJob.objects.count() == 0


def test_import_job_page_shows_status_and_escaped_report(curator_client, category):
    ImportJob.objects.create(
        uid=JOB_UID,
        source="url",
        category=category,
        status="done",
        added=1,
        rejected=1,
        report=[
            {"name": "https://example.com/a.jpg", "outcome": "added"},
            {"name": "<b>x</b>", "outcome": "rejected", "reason": "not an image"},
        ],
    )

    response = curator_client.get(job_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert '<p id="summary" class="summary">1 added, 0 duplicates, 1 rejected</p>' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert f'data-api-url="/api/imports/jobs/{JOB_UID}/"' in html
    assert 'data-status="done"' in html


def test_import_jobs_list_in_bounded_queries(
    curator_client, curator, category, django_assert_num_queries
):
    for _ in range(3):
        ImportJob.objects.create(source="url", category=category, created_by=curator)

    with django_assert_num_queries(4):
        response = curator_client.get(reverse("curate-imports"))

    assert response.status_code == 200
    assert len(re.findall(r'href="/curate/imports/[0-9a-f-]{36}/"', response.content.decode())) == 3


# --- workers and invitations ----------------------------------------------------------------


def test_curator_creates_a_worker(curator_client):
    response = curator_client.post(
        reverse("curate-workers"),
        {"action": "worker", "worker-username": "walt", "worker-password": PASSWORD},
        follow=True,
    )

    html = response.content.decode()
    walt = User.objects.get(username="walt")
    assert response.redirect_chain == [("/curate/workers/", 302)]
    assert "Worker walt can now log in." in html
    assert walt.role == "worker"
    assert walt.check_password(PASSWORD)
    assert "<td>walt</td>" in html


def test_weak_worker_password_shows_the_validators_and_creates_nothing(curator_client):
    response = curator_client.post(
        reverse("curate-workers"),
        {"action": "worker", "worker-username": "walt", "worker-password": "1234"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["worker_form"].errors == {
        "password": [
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
            "This password is entirely numeric.",
        ]
    }
    assert "This password is too short. It must contain at least 8 characters." in html
    assert 'aria-invalid="true"' in html
    assert not User.objects.filter(username="walt").exists()


def test_taken_username_is_refused(curator_client, worker):
    response = curator_client.post(
        reverse("curate-workers"),
        {"action": "worker", "worker-username": "WENDY", "worker-password": PASSWORD},
    )

    assert response.context["worker_form"].errors == {
        "username": ["That username is taken; choose another."]
    }
    assert User.objects.count() == 2


def test_workers_list_in_bounded_queries(curator_client, django_assert_num_queries):
    for name in ["ann", "bob", "cy"]:
        UserFactory(username=name)

    with django_assert_num_queries(4):
        response = curator_client.get(reverse("curate-workers"))

    assert [user.username for user in response.context["page"]] == ["ann", "bob", "cy"]


def test_invitation_flow(client, curator):
    client.force_login(curator)
    page = client.post(reverse("curate-workers"), {"action": "invite", "invite-note": "Ivy"})
    html = page.content.decode()
    match = re.search(r'value="http://testserver/accounts/invite/([A-Za-z0-9_-]+)/"', html)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    assert match is not None
    link = f"/accounts/invite/{match.group(1)}/"
    client.post(reverse("logout"))

    form = client.get(link)
    accepted = client.post(link, {"username": "ivy", "password1": PASSWORD, "password2": PASSWORD})

    ivy = User.objects.get(username="ivy")
    assert form.status_code == 200
    assert accepted.status_code == 302
    assert accepted["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(ivy.pk)
    assert Invitation.objects.get().used_by == ivy

    client.post(reverse("logout"))
    again_get = client.get(link)
    again_post = client.post(
        link, {"username": "ivy2", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert again_get.status_code == 410
    assert again_post.status_code == 410
    assert "This invitation was used or has expired" in again_get.content.decode()
    assert not User.objects.filter(username="ivy2").exists()
    assert "_auth_user_id" not in client.session


def test_unknown_invitation_is_gone(client, db):
    response = client.get(reverse("invite-accept", args=["no-such-token"]))

    assert response.status_code == 410


def test_invitation_with_mismatched_passwords_keeps_it_open(client, curator):
    from labeling.services.accounts import invitation_create

    _, token = invitation_create(created_by=curator)

    response = client.post(
        reverse("invite-accept", args=[token]),
        {"username": "ivy", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "password2": ["The two passwords differ; type the same one twice."]
    }
    assert Invitation.objects.get().used_by is None
    assert User.objects.count() == 1


# --- sign-up --------------------------------------------------------------------------------


def test_signup_is_404_when_closed(client, db):
    get = client.get(reverse("signup"))
    post = client.post(
        reverse("signup"), {"username": "sam", "password1": PASSWORD, "password2": PASSWORD}
    )

    assert get.status_code == 404
    assert post.status_code == 404
    assert User.objects.count() == 0


def test_open_signup_creates_a_worker_and_logs_in(client, db, settings):
    settings.CROWDNET_OPEN_SIGNUP = True

    login_page = client.get(reverse("login")).content.decode()
    response = client.post(
        reverse("signup"), {"username": "sam", "password1": PASSWORD, "password2": PASSWORD}
    )

    sam = User.objects.get()
    assert 'href="/accounts/signup/"' in login_page
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert (sam.username, sam.role, sam.is_staff) == ("sam", "worker", False)
    assert client.session["_auth_user_id"] == str(sam.pk)


def test_signup_with_weak_password_creates_nothing(client, db, settings):
    settings.CROWDNET_OPEN_SIGNUP = True

    response = client.post(
        reverse("signup"), {"username": "sam", "password1": "sam", "password2": "sam"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "password1": [
            "The password is too similar to the username.",
            "This password is too short. It must contain at least 8 characters.",
            "This password is too common.",
        ]
    }
    assert User.objects.count() == 0


# --- login and its limit --------------------------------------------------------------------


def test_login_through_the_form(client, curator):
    response = client.post(
        reverse("login"), {"username": "cora", "password": PASSWORD, "next": "/curate/upload/"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/curate/upload/"
    assert client.session["_auth_user_id"] == str(curator.pk)


def test_login_is_refused_with_429_after_too_many_failures(client, curator, worker):
    failures = [
        client.post(reverse("login"), {"username": "cora", "password": "wrong"}).status_code
        for _ in range(LIMITS.per_account)
    ]

    blocked = client.post(reverse("login"), {"username": "cora", "password": PASSWORD})

    assert failures == [200] * LIMITS.per_account
    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.content.decode()
    assert "_auth_user_id" not in client.session
    curator.refresh_from_db()
    assert curator.last_login is None
    other = client.post(reverse("login"), {"username": "wendy", "password": PASSWORD})
    assert other.status_code == 302
    assert client.session["_auth_user_id"] == str(worker.pk)


def test_username_case_shares_one_limit(client, curator):
    for _ in range(LIMITS.per_account):
        client.post(reverse("login"), {"username": "cora", "password": "wrong"})

    response = client.post(reverse("login"), {"username": "CORA", "password": PASSWORD})

    assert response.status_code == 429


def test_categories_only_need_one_query_for_the_tree(curator_client, django_assert_num_queries):
    root = CategoryFactory(name="animal", slug="animal")
    for index in range(5):
        CategoryFactory(name=f"kind {index}", slug=f"kind-{index}", parent=root)

    with django_assert_num_queries(3):
        response = curator_client.get(reverse("curate-upload"))

    assert response.status_code == 200
    assert Category.objects.count() == 6
