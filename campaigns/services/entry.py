"""campaign_enter: a marketplace worker arrives at a campaign link and gets (or gets back)
the CrowdNet account bound to their external id, and an assignment to work on."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction

from campaigns.entry_params import Entry
from campaigns.models import Assignment, AssignmentTask, Campaign, ExternalWorker
from labeling.models import MicroTask, User
from labeling.services.microtasks import worker_profile

OTHERS_ASSIGNMENT = "This assignment belongs to another worker."


class EntryRefused(Exception):
    """The worker may not work here now; ``message`` is shown to them, ``status`` is the HTTP
    status to answer with."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _new_username(marketplace: str) -> str:
    """A fresh random name: never derived from the external id, so that no link can name an
    existing account (or one a curator makes later)."""
    while True:
        name = f"{marketplace}-{secrets.token_hex(6)}"
        if not User.objects.filter(username__iexact=name).exists():
            return name


def external_worker_bind(*, marketplace: str, external_id: str) -> ExternalWorker:
    """The binding of this external worker, made with a new worker account on first arrival;
    writes a user, their profile and the binding. Two first arrivals at once get one."""
    found = ExternalWorker.objects.filter(marketplace=marketplace, external_id=external_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=_new_username(marketplace))
            worker_profile(user)
            return ExternalWorker.objects.create(
                marketplace=marketplace, external_id=external_id, user=user
            )
    except IntegrityError:
        return ExternalWorker.objects.get(marketplace=marketplace, external_id=external_id)


def campaign_tasks_answered(campaign: Campaign, worker: ExternalWorker) -> int:
    """Tasks this worker answered under any of their assignments of the campaign."""
    return AssignmentTask.objects.filter(
        assignment__campaign=campaign,
        assignment__worker=worker,
        task__status=MicroTask.Status.ANSWERED,
    ).count()


def campaign_enter(*, campaign: Campaign, entry: Entry) -> Assignment:
    """Bind the worker and open (or reopen) their assignment; writes the binding and account
    on first arrival, and the assignment. Raises EntryRefused before writing an assignment
    when the campaign is closed, the worker is paused or inactive, the assignment is another
    worker's or already submitted, or the worker reached the campaign's cap."""
    if entry.preview or entry.marketplace != campaign.marketplace:
        raise EntryRefused("This link is not for this campaign's marketplace.", 400)
    if campaign.state != Campaign.State.OPEN:
        raise EntryRefused("This campaign is closed; no new work is given out.")
    study = campaign.prolific_study_id
    if study and entry.group_id != study:
        raise EntryRefused("This link is for another Prolific study.", 400)
    taken = Assignment.objects.filter(campaign=campaign, external_id=entry.assignment_id)
    if taken.exclude(worker__external_id=entry.worker_id).exists():  # before any account
        raise EntryRefused(OTHERS_ASSIGNMENT, 409)
    worker = external_worker_bind(marketplace=entry.marketplace, external_id=entry.worker_id)
    user = worker.user
    if not user.is_active or user.is_curator:
        raise EntryRefused("This account can't work on campaigns.")
    profile = worker_profile(user)
    if profile.paused:
        raise EntryRefused(f"Your account is paused: {profile.pause_reason}")
    try:
        return _assignment_open(campaign, worker, entry)
    except IntegrityError:  # the same new assignment id arrived twice at once
        raise EntryRefused(
            "This assignment is being opened already; reload the page.", 409
        ) from None


def _assignment_open(campaign: Campaign, worker: ExternalWorker, entry: Entry) -> Assignment:
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update()
            .filter(campaign=campaign, external_id=entry.assignment_id)
            .first()
        )
        if assignment is not None:
            if assignment.worker_id != worker.pk:
                raise EntryRefused(OTHERS_ASSIGNMENT, 409)
            if assignment.state not in (Assignment.State.WORKING, Assignment.State.FINISHED):
                raise EntryRefused("This assignment was already submitted.", 409)
            return assignment
        if campaign_tasks_answered(campaign, worker) >= campaign.cap_per_worker:
            raise EntryRefused(
                "You have done the most tasks this campaign allows one worker. Thank you!"
            )
        return Assignment.objects.create(
            campaign=campaign,
            worker=worker,
            external_id=entry.assignment_id,
            group_id=entry.group_id,
            submit_to=entry.submit_to,
        )
