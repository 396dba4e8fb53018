"""An assignment's work: its next task within the campaign's scope and caps, the completion
code once it is done, and the single claim of that code."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from campaigns.models import Assignment, AssignmentTask, Campaign
from campaigns.services.entry import campaign_tasks_answered
from labeling.models import MicroTask, User
from labeling.services.microtasks import WorkerPaused, task_assign, worker_profile
from labeling.services.task_scope import TaskScope

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Completion codes: no 0/O or 1/I, since workers copy them by eye."""
CODE_LENGTH = 12


class AssignmentNotFound(Exception):
    """No such assignment for this worker (another worker's looks the same)."""


class ClaimRefused(Exception):
    """The code can't be claimed; ``message`` says why. Nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class NextWork:
    """A task to show, or None with ``finished`` (the code is issued) or not (nothing to do
    yet: ``labeling.services.microtasks.task_empty_reason`` says why)."""

    task: MicroTask | None
    finished: bool = False


def campaign_scope(campaign: Campaign) -> TaskScope:
    """The categories and kinds the campaign's tasks are drawn from."""
    return TaskScope(
        categories=frozenset(campaign.categories.values_list("id", flat=True)),
        kinds=frozenset(campaign.kinds),
    )


def assignment_of(*, uid: str, user: User, lock: bool = False) -> Assignment:
    """The user's own assignment with this uid; AssignmentNotFound otherwise."""
    rows = Assignment.objects.select_for_update() if lock else Assignment.objects
    found = rows.select_related("campaign", "worker").filter(uid=uid, worker__user=user).first()
    if found is None:
        raise AssignmentNotFound
    return found


def _finish(assignment: Assignment) -> None:
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    assignment.state, assignment.completion_code = Assignment.State.FINISHED, code
    assignment.finished_at = timezone.now()
    assignment.save(update_fields=["state", "completion_code", "finished_at"])


def assignment_task_next(*, uid: str, user: User) -> NextWork:
    """The assignment's next task, leased within the campaign's categories and kinds; once
    ``tasks_per_assignment`` tasks are answered, the worker's cap is reached, or the pool is
    empty after at least one answer, the assignment is finished and its code issued. Writes
    the lease and its link to the assignment, or the code. Raises AssignmentNotFound, and
    labeling's WorkerPaused for a paused worker."""
    with transaction.atomic():
        assignment = assignment_of(uid=uid, user=user, lock=True)
        if assignment.state != Assignment.State.WORKING:
            return NextWork(None, finished=True)
        profile = worker_profile(user)
        if profile.paused:  # a worker a gate paused mid-assignment gets no code
            raise WorkerPaused(profile.pause_reason)
        campaign = assignment.campaign
        links = AssignmentTask.objects.filter(assignment=assignment)
        answered = links.filter(task__status=MicroTask.Status.ANSWERED).count()
        left = min(
            campaign.tasks_per_assignment - answered,
            campaign.cap_per_worker - campaign_tasks_answered(campaign, assignment.worker),
        )
        if left <= 0:
            _finish(assignment)
            return NextWork(None, finished=True)
        held = list(
            MicroTask.objects.filter(
                assignment__assignment=assignment,
                status=MicroTask.Status.LEASED,
                expires_at__gt=timezone.now(),
            ).order_by("issued_at")
        )
        if len(held) >= left:  # the prefetch never leases past the assignment's end
            return NextWork(held[0])
        task = task_assign(worker=user, scope=campaign_scope(campaign))
        if task is None:
            if answered:
                _finish(assignment)
                return NextWork(None, finished=True)
            return NextWork(None)
        AssignmentTask.objects.get_or_create(task=task, defaults={"assignment": assignment})
        return NextWork(task)


def completion_claim(*, uid: str, user: User, code: str) -> Assignment:
    """Spend the assignment's completion code: the user's own assignment, finished, and the
    code it was given; writes the assignment (submitted). Raises AssignmentNotFound or
    ClaimRefused (used, not finished, or a wrong code) before writing anything."""
    with transaction.atomic():
        assignment = assignment_of(uid=uid, user=user, lock=True)
        if assignment.state == Assignment.State.WORKING:
            raise ClaimRefused("This assignment is not finished yet.")
        if assignment.state != Assignment.State.FINISHED:
            raise ClaimRefused("This completion code was already used.")
        if not constant_time_compare(code.strip().upper(), assignment.completion_code):
            raise ClaimRefused("That is not this assignment's completion code.")
        assignment.state, assignment.submitted_at = Assignment.State.SUBMITTED, timezone.now()
        assignment.save(update_fields=["state", "submitted_at"])
    return assignment
