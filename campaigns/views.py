"""HTML views: a marketplace worker's entry, work and completion pages, and the curators'
campaign pages. Validate, call one service, render."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_POST

from campaigns.entry_params import (
    EXTERNAL_SUBMIT_PATH,
    MTURK_SUBMIT_ORIGINS,
    EntryInvalid,
    entry_parse,
)
from campaigns.exports import EXPORTS, money
from campaigns.forms import CampaignForm
from campaigns.models import Assignment, Campaign, Marketplace
from campaigns.services.entry import EntryRefused, campaign_enter
from campaigns.services.manage import campaign_create, campaign_state_set
from campaigns.services.pay import campaign_review, campaign_summary
from campaigns.services.work import (
    AssignmentNotFound,
    ClaimRefused,
    assignment_of,
    completion_claim,
)
from labeling.api.image_urls import image_url_sign
from labeling.api.throttling import AddressRateThrottle
from labeling.services.answers import worker_stats
from labeling.services.microtasks import task_examples, worker_profile
from labeling.views import curator_required


class CampaignThrottle(AddressRateThrottle):
    """Entries and claims per client address (CROWDNET_THROTTLE_CAMPAIGN)."""

    scope = "campaign"


def submit_origins() -> tuple[str, ...]:
    """Where turkSubmitTo may point: MTurk and its sandbox, plus the configured stand-ins."""
    return (*MTURK_SUBMIT_ORIGINS, *settings.CROWDNET_CAMPAIGN_SUBMIT_ORIGINS)


def _marketplace_page(
    response: HttpResponse, campaign: Campaign, form_to: str = ""
) -> HttpResponse:
    """Let MTurk frame the page (ExternalQuestion shows it in an iframe) and let its form post
    to ``form_to`` (and a Prolific redirect after it) under the CSP."""
    if campaign.marketplace == Marketplace.MTURK:
        response.xframe_options_exempt = True
        response._csp_replace = {"frame-ancestors": list(MTURK_SUBMIT_ORIGINS)}
    if form_to:
        response._csp_update = {"form-action": [form_to]}
    return response


def _refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "campaigns/refused.html", {"message": message}, status=status)


def _preview(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """A sample of the work, with no account and nothing to answer."""
    sample, image_url = None, ""
    for category in campaign.categories.order_by("name"):
        sample = task_examples(category.pk).select_related("image", "category").first()
        if sample is not None:
            break
    if sample is not None and campaign.created_by_id is not None:
        path = reverse("image-file", args=[sample.image.uid, "thumb"])
        image_url = image_url_sign(path, campaign.created_by_id)
    context = {
        "campaign": campaign,
        "sample": sample,
        "image_url": image_url,
        "reward": money(campaign.reward_cents),
    }
    return render(request, "campaigns/preview.html", context)


@xframe_options_exempt
@require_GET
def campaign_entry(request: HttpRequest, slug: str) -> HttpResponse:
    """A marketplace worker arrives: MTurk's preview gets a sample; anyone else gets their
    bound account (a new session) and their assignment."""
    campaign = get_object_or_404(Campaign, slug=slug)
    if not CampaignThrottle().allow_request(request, None):
        return _refused(request, "Too many arrivals from your address; wait a minute.", 429)
    try:
        entry = entry_parse(request.GET, campaign.marketplace, submit_origins())
    except EntryInvalid as invalid:
        return _marketplace_page(_refused(request, str(invalid), 400), campaign)
    if entry.preview:
        return _marketplace_page(_preview(request, campaign), campaign)
    try:
        assignment = campaign_enter(campaign=campaign, entry=entry)
    except EntryRefused as refused:
        return _marketplace_page(_refused(request, refused.message, refused.status), campaign)
    # login() rotates the session key (and flushes another user's session): no fixation.
    login(request, assignment.worker.user, backend=settings.AUTHENTICATION_BACKENDS[0])
    return redirect("campaign-work", slug=campaign.slug, uid=assignment.uid)


def _own(request: HttpRequest, slug: str, uid: str) -> Assignment:
    try:
        assignment = assignment_of(uid=uid, user=request.user)
    except AssignmentNotFound:
        raise Http404("No such assignment.") from None
    if assignment.campaign.slug != slug:
        raise Http404("No such assignment.")
    return assignment


@xframe_options_exempt
@login_required
@require_GET
def campaign_work(request: HttpRequest, slug: str, uid: str) -> HttpResponse:
    """The labeling app, fed by the assignment's own next-task endpoint."""
    assignment = _own(request, slug, uid)
    if assignment.state != Assignment.State.WORKING:
        return redirect("campaign-done", slug=slug, uid=uid)
    context = {
        "assignment": assignment,
        "campaign": assignment.campaign,
        "kind": "",
        "stats": worker_stats(worker_profile(request.user)),
    }
    return _marketplace_page(render(request, "campaigns/work.html", context), assignment.campaign)


def _return_page(request: HttpRequest, assignment: Assignment) -> HttpResponse:
    """After the claim: MTurk's externalSubmit form, or the way back to Prolific."""
    campaign = assignment.campaign
    if campaign.marketplace == Marketplace.PROLIFIC:
        return redirect(campaign.completion_url)
    action = f"{assignment.submit_to}{EXTERNAL_SUBMIT_PATH}"
    context = {"assignment": assignment, "campaign": campaign, "action": action}
    response = render(request, "campaigns/submit.html", context)
    return _marketplace_page(response, campaign, form_to=assignment.submit_to)


def _completion_origin(campaign: Campaign) -> str:
    if campaign.marketplace != Marketplace.PROLIFIC:
        return ""
    scheme, _, rest = campaign.completion_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


@xframe_options_exempt
@login_required
@require_GET
def campaign_done(request: HttpRequest, slug: str, uid: str) -> HttpResponse:
    """The finished assignment's completion code and the button that claims it; once
    claimed, the way back to the marketplace."""
    assignment = _own(request, slug, uid)
    if assignment.state == Assignment.State.WORKING:
        return redirect("campaign-work", slug=slug, uid=uid)
    if assignment.state != Assignment.State.FINISHED:
        if assignment.campaign.marketplace == Marketplace.PROLIFIC:
            context = {"assignment": assignment, "campaign": assignment.campaign}
            return render(request, "campaigns/submitted.html", context)
        return _return_page(request, assignment)
    context = {"assignment": assignment, "campaign": assignment.campaign}
    response = render(request, "campaigns/done.html", context)
    # Chrome checks form-action on the redirect after the claim, too.
    return _marketplace_page(response, assignment.campaign, _completion_origin(assignment.campaign))


@xframe_options_exempt
@login_required
@require_POST
def campaign_claim(request: HttpRequest, slug: str, uid: str) -> HttpResponse:
    """Spend the completion code (once), then go back to the marketplace."""
    if not CampaignThrottle().allow_request(request, None):
        return _refused(request, "Too many tries from your address; wait a minute.", 429)
    _own(request, slug, uid)
    try:
        assignment = completion_claim(uid=uid, user=request.user, code=request.POST.get("code", ""))
    except AssignmentNotFound:
        raise Http404("No such assignment.") from None
    except ClaimRefused as refused:
        return _refused(request, refused.message, 409)
    return _return_page(request, assignment)


@curator_required
def curate_campaigns(request: HttpRequest) -> HttpResponse:
    """Every campaign, and the form that opens a new one."""
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        categories = list(data.pop("categories"))
        try:
            campaign = campaign_create(created_by=request.user, categories=categories, **data)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, f"Campaign “{campaign.name}” is open.")
            return redirect("curate-campaign", slug=campaign.slug)
    campaigns = Campaign.objects.prefetch_related("categories").order_by("-id")
    return render(
        request, "campaigns/curate_campaigns.html", {"form": form, "campaigns": campaigns}
    )


def _cents(value: int) -> str:
    return money(value)


@curator_required
def curate_campaign(request: HttpRequest, slug: str) -> HttpResponse:
    """One campaign: its link, summary, assignments, ledger, review and CSV downloads."""
    campaign = get_object_or_404(Campaign.objects.prefetch_related("categories"), slug=slug)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "review":
            result = campaign_review(campaign=campaign)
            messages.success(
                request, f"Reviewed: {result.approved} approved, {result.rejected} rejected."
            )
        elif action in Campaign.State.values:
            campaign_state_set(campaign=campaign, state=action)
            messages.success(request, f"The campaign is {campaign.get_state_display().lower()}.")
        return redirect("curate-campaign", slug=slug)
    summary = campaign_summary(campaign)
    context: dict[str, Any] = {
        "campaign": campaign,
        "link": request.build_absolute_uri(reverse("campaign-entry", args=[slug])),
        "summary": summary,
        "spent": _cents(summary.spent_cents),
        "workers": [
            (w, _cents(w.base_cents), _cents(w.bonus_cents), _cents(w.total_cents))
            for w in summary.workers
        ],
        "assignments": campaign.assignments.select_related("worker").order_by("-id")[:200],
        "ledger": [
            (e, _cents(e.amount_cents))
            for e in campaign.ledger.select_related("worker", "assignment").order_by("-id")[:500]
        ],
        "exports": [
            (name, reverse("campaign-export", args=[slug, name]))
            for name in EXPORTS
            if name == "ledger" or name.startswith(campaign.marketplace)
        ],
    }
    return render(request, "campaigns/curate_campaign.html", context)
