"""HTML views for workers and curators: validate a form, call one service, render. The
category tree's pages are in catalog_views, exports and annotation imports in datasets.views."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods

from labeling.forms import (
    InvitationForm,
    NewAccountForm,
    ScrapeForm,
    UploadForm,
    WorkerCreateForm,
)
from labeling.models import (
    Candidate,
    Category,
    ConsensusRun,
    Image,
    ImportJob,
    TaskKind,
    User,
    WorkerProfile,
)
from labeling.services import accounts, imports
from labeling.services.answers import worker_stats
from labeling.services.consensus import decision_override, model_disagreements, review_queue
from labeling.services.contested import contested_items, suspect_list, suspects
from labeling.services.dashboards import crowd_quality, labeling_progress, worker_answers
from labeling.services.microtasks import worker_pause, worker_profile, worker_resume
from labeling.services.uploads import uploaded_files_ingest
from labeling.tasks import consensus_reaggregate as consensus_reaggregate_task
from labeling.throttle import login_blocked, login_refused

REPORT_ROWS_SHOWN = 1000
"""Most report rows a page lists; the counts above the table always cover every file."""

KIND_LINKS = [
    (TaskKind.VERIFY, "Yes or no", "Is the thing in the picture?"),
    (TaskKind.GRID, "Pick pictures", "Select every picture that shows it."),
    (TaskKind.DRAW, "Draw boxes", "Draw a box around each one."),
    (TaskKind.VERIFY_BOX, "Check a box", "Is this box tight around one?"),
    (TaskKind.COVERAGE, "Check coverage", "Is every one boxed?"),
]
"""The task kinds a worker can pick on the home page: kind, short name, what it asks."""

View = Callable[..., HttpResponse]


def curator_required(view: View) -> View:
    """Signed-in curators only: others are sent to log in, or refused with 403."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_curator:
            raise PermissionDenied("Only curators can open this page.")
        return view(request, *args, **kwargs)

    return login_required(checked)


class ThrottledLoginView(LoginView):
    """Django's login, saying 429 to a client that failed too often. The authentication
    backend refuses and counts (labeling.authentication); this only explains the refusal."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if login_blocked(request, request.POST.get("username", "")):
            return login_refused(request)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "open_signup": settings.CROWDNET_OPEN_SIGNUP}


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Workers: their record and where to start labeling. Curators: what the collection holds."""
    if not request.user.is_curator:
        context = {"stats": _own_stats(request.user), "kinds": KIND_LINKS}
        return render(request, "labeling/home_worker.html", context)
    rows = Candidate.objects.order_by().values("state").annotate(n=Count("id"))
    by_state = {row["state"]: row["n"] for row in rows}
    states = [(label, by_state.get(value, 0)) for value, label in Candidate.State.choices]
    context = {
        "images": Image.objects.count(),
        "categories": Category.objects.count(),
        "candidates": sum(by_state.values()),
        "states": states,
        "recent_jobs": ImportJob.objects.select_related("category").order_by("-id")[:5],
        "suspects": suspects().count(),
    }
    return render(request, "labeling/home_curator.html", context)


def _own_stats(user: User) -> dict[str, Any]:
    """The signed-in user's answer counts and pause state; zeros before their first task."""
    profile = WorkerProfile.objects.filter(user=user).first() or WorkerProfile(user=user)
    return worker_stats(profile)


@login_required
@require_GET
def label(request: HttpRequest) -> HttpResponse:
    """The labeling app: label/app.js asks the task API for work and sends the answers.

    ``?kind=`` narrows the tasks to one kind; an unknown kind is ignored."""
    kind = request.GET.get("kind", "")
    context = {
        "kind": kind if kind in TaskKind.values else "",
        "kind_name": next((name for value, name, _ in KIND_LINKS if value == kind), ""),
        "stats": _own_stats(request.user),
    }
    return render(request, "labeling/label.html", context)


def bad_request(request: HttpRequest, message: str) -> HttpResponse:
    """A 400 page saying what was wrong with the request."""
    return render(request, "400.html", {"message": message}, status=400)


def posted_id(request: HttpRequest, name: str) -> int | None:
    """The positive whole number posted as ``name``, or None when it is missing or not one."""
    value = request.POST.get(name, "")
    if not (value.isascii() and value.isdigit()) or len(value) > 18 or int(value) < 1:
        return None
    return int(value)


def posted_uuid(request: HttpRequest, name: str) -> uuid.UUID | None:
    """The UUID posted as ``name``, or None when it is missing or malformed."""
    try:
        return uuid.UUID(request.POST.get(name, ""))
    except ValueError:
        return None


def _report_context(
    items: list[dict[str, Any]], *, added: int, duplicates: int, rejected: int
) -> dict[str, Any]:
    """Counts and the first REPORT_ROWS_SHOWN rows of an import's report, for _report.html."""
    return {
        "summary": {"added": added, "duplicates": duplicates, "rejected": rejected},
        "rows": items[:REPORT_ROWS_SHOWN],
        "rows_hidden": max(0, len(items) - REPORT_ROWS_SHOWN),
    }


@curator_required
@require_http_methods(["GET", "POST"])
def curate_upload(request: HttpRequest) -> HttpResponse:
    """Upload images and archives; JavaScript posts to the API, this form works without it."""
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    context: dict[str, Any] = {"form": form, "rows_limit": REPORT_ROWS_SHOWN}
    if request.method == "POST" and form.is_valid():
        report = uploaded_files_ingest(
            files=form.cleaned_data["files"],
            category=form.cleaned_data["category"],
            uploader=request.user,
        )
        context |= _report_context(
            report.as_dict()["items"],
            added=report.added,
            duplicates=report.duplicates,
            rejected=report.rejected,
        )
        context["category"] = form.cleaned_data["category"]
        context["form"] = UploadForm(initial={"category": form.cleaned_data["category"]})
    return render(request, "labeling/curate_upload.html", context)


@curator_required
@require_http_methods(["GET", "POST"])
def curate_scrape(request: HttpRequest) -> HttpResponse:
    """Start a background import from image URLs or a web page."""
    form = ScrapeForm(request.POST) if request.method == "POST" else ScrapeForm()
    if request.method == "POST" and form.is_valid():
        job = imports.scrape_job_create(
            category=form.cleaned_data["category"],
            created_by=request.user,
            urls=form.cleaned_data["urls"],
            page_url=form.cleaned_data["page_url"],
        )
        return redirect("curate-import", uid=job.uid)
    return render(request, "labeling/curate_scrape.html", {"form": form})


@curator_required
@require_GET
def curate_imports(request: HttpRequest) -> HttpResponse:
    """The most recent import jobs."""
    jobs = ImportJob.objects.select_related("category", "created_by").order_by("-id")
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    return render(request, "labeling/curate_imports.html", {"page": page})


@curator_required
@require_GET
def curate_import(request: HttpRequest, uid: str) -> HttpResponse:
    """One import job: its status and per-item report, refreshed by import_job.js."""
    job = get_object_or_404(ImportJob.objects.select_related("category", "created_by"), uid=uid)
    running = job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)
    context = {
        "job": job,
        "running": running,
        "rows_limit": REPORT_ROWS_SHOWN,
        **_report_context(
            job.report, added=job.added, duplicates=job.duplicates, rejected=job.rejected
        ),
    }
    if running:
        context["summary"] = None
    return render(request, "labeling/curate_import.html", context)


def _resume_posted(request: HttpRequest, back: str) -> HttpResponse:
    """A curator resumes the posted worker (400 without one) and goes back to ``back``."""
    worker_id = posted_id(request, "worker")
    if worker_id is None:
        return bad_request(request, "The worker to resume must be given by its number.")
    worker = get_object_or_404(User, pk=worker_id, role=User.Role.WORKER)
    worker_resume(profile=worker_profile(worker))
    messages.success(request, f"{worker.username} can label again.")
    return redirect(back)


@curator_required
@require_http_methods(["GET", "POST"])
def curate_workers(request: HttpRequest) -> HttpResponse:
    """List workers, create a worker account, or make a one-time invitation link."""
    worker_form, invite_form = WorkerCreateForm(prefix="worker"), InvitationForm(prefix="invite")
    invite_url = ""
    action = request.POST.get("action")
    if action == "worker":
        worker_form = WorkerCreateForm(request.POST, prefix="worker")
        if worker_form.is_valid():
            try:
                user = accounts.worker_create(created_by=request.user, **worker_form.cleaned_data)
            except ValidationError as error:
                worker_form.add_service_error(error)
            else:
                messages.success(request, f"Worker {user.username} can now log in.")
                return redirect("curate-workers")
    elif action == "resume":
        return _resume_posted(request, "curate-workers")
    elif action == "invite":
        invite_form = InvitationForm(request.POST, prefix="invite")
        if invite_form.is_valid():
            _, token = accounts.invitation_create(
                created_by=request.user, note=invite_form.cleaned_data["note"]
            )
            invite_url = request.build_absolute_uri(reverse("invite-accept", args=[token]))
            invite_form = InvitationForm(prefix="invite")
    workers = (
        User.objects.filter(role=User.Role.WORKER, is_staff=False)
        .select_related("profile")
        .order_by("username")
    )
    context = {
        "page": Paginator(workers, 50).get_page(request.GET.get("page")),
        "worker_form": worker_form,
        "invite_form": invite_form,
        "invite_url": invite_url,
        "invite_days": settings.CROWDNET_INVITE_DAYS,
    }
    response = render(request, "labeling/curate_workers.html", context)
    if invite_url:
        # The link is a secret shown once: no cache may keep a copy of this page.
        add_never_cache_headers(response)
    return response


@curator_required
@require_http_methods(["GET", "POST"])
def curate_crowd(request: HttpRequest) -> HttpResponse:
    """Crowd quality: every worker's record and the accuracy distributions; pause or restore."""
    action = request.POST.get("action")
    if action in ("pause", "resume"):
        worker_id = posted_id(request, "worker")
        if worker_id is None:
            return bad_request(request, f"The worker to {action} must be given by its number.")
        worker = get_object_or_404(User, pk=worker_id, role=User.Role.WORKER)
        profile = worker_profile(worker)
        if action == "resume":
            worker_resume(profile=profile)
            messages.success(request, f"{worker.username} can label again.")
        else:
            reason = request.POST.get("reason", "").strip() or "Paused by a curator."
            worker_pause(profile=profile, reason=reason)
            messages.success(request, f"{worker.username} is paused.")
        return redirect("curate-crowd")
    return render(request, "labeling/curate_crowd.html", {"crowd": crowd_quality()})


@curator_required
@require_GET
def curate_worker_answers(request: HttpRequest, pk: int) -> HttpResponse:
    """One worker's most recent answers, with the gold answer where there was one."""
    worker = get_object_or_404(User, pk=pk, role=User.Role.WORKER)
    context = {"worker": worker, "answers": worker_answers(worker.pk)}
    return render(request, "labeling/curate_worker_answers.html", context)


@curator_required
@require_GET
def curate_progress(request: HttpRequest) -> HttpResponse:
    """Labeling progress per category and the crowd's votes per hour (charts by progress.js)."""
    return render(request, "labeling/curate_progress.html", {"progress": labeling_progress()})


@curator_required
@require_http_methods(["GET", "POST"])
def curate_review(request: HttpRequest) -> HttpResponse:
    """The review queue: items the crowd could not decide within the vote cap. A curator's
    decision overrides the crowd's; "Run consensus now" queues a Dawid-Skene re-aggregation."""
    action = request.POST.get("action")
    if action == "decide":
        return _review_decide(request)
    if action == "resume":
        return _resume_posted(request, "curate-review")
    if action == "reaggregate":
        user_id = request.user.pk
        transaction.on_commit(
            lambda: consensus_reaggregate_task.delay(ConsensusRun.Trigger.MANUAL, user_id)
        )
        messages.success(request, "Re-aggregation queued; the queue updates when it is done.")
        return redirect("curate-review")
    queue = review_queue().select_related("image", "category")
    disagreements = model_disagreements().select_related("image", "category")
    contested = contested_items().select_related("image", "category")
    context = {
        "page": Paginator(queue, 24).get_page(request.GET.get("page")),
        "disagreements": disagreements[:24],
        "disagreement_count": disagreements.count(),
        "contested": contested[:24],
        "contested_count": contested.count(),
        "suspects": suspect_list(),
        "margin": settings.CROWDNET_REVIEW_MODEL_MARGIN,
        "last_run": ConsensusRun.objects.first(),
        "threshold": settings.CROWDNET_CONSENSUS_THRESHOLD,
        "cap": settings.CROWDNET_CONSENSUS_VOTE_CAP,
    }
    return render(request, "labeling/curate_review.html", context)


REVIEW_VERDICTS = {"yes": True, "no": False}
"""The answers the review page's decision form posts as ``accepted``."""


def _review_decide(request: HttpRequest) -> HttpResponse:
    """A curator's yes or no on one review item; anything else is refused with 400."""
    candidate_id = posted_id(request, "candidate")
    if candidate_id is None:
        return bad_request(request, "The item to decide must be given by its number.")
    verdict = request.POST.get("accepted", "")
    if verdict not in REVIEW_VERDICTS:
        return bad_request(request, "The decision must be yes or no.")
    candidate = get_object_or_404(Candidate, pk=candidate_id)
    accepted = REVIEW_VERDICTS[verdict]
    decision_override(candidate=candidate, accepted=accepted, by=request.user)
    messages.success(request, f"Item {candidate.pk} {'accepted' if accepted else 'rejected'}.")
    page = posted_id(request, "page") or 1
    return redirect(f"{reverse('curate-review')}?page={page}")


def _gone(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/invite_gone.html", status=410)


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Someone invited picks a username and password, and is logged in."""
    if accounts.invitation_find(token) is None:
        return _gone(request)
    form = NewAccountForm(request.POST) if request.method == "POST" else NewAccountForm()
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.invitation_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as error:
            if accounts.invitation_find(token) is None:
                return _gone(request)
            form.add_service_error(error)
        else:
            login(request, user)
            messages.success(request, f"Welcome, {user.username}: your account is ready.")
            return redirect("home")
    response = render(request, "registration/invite_accept.html", {"form": form})
    add_never_cache_headers(response)
    return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Open sign-up as a worker, when CROWDNET_OPEN_SIGNUP is on; 404 otherwise."""
    if not settings.CROWDNET_OPEN_SIGNUP:
        raise Http404("Sign-up is closed.")
    form = NewAccountForm(request.POST) if request.method == "POST" else NewAccountForm()
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.signup(
                username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            login(request, user)
            messages.success(request, f"Welcome, {user.username}: your account is ready.")
            return redirect("home")
    return render(request, "registration/signup.html", {"form": form})
