"""Campaigns: marketplace labelling jobs, the external workers bound to CrowdNet accounts,
their assignments, and the ledger of what each one earned. Money is in integer cents."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from labeling.models import Category, MicroTask


class Marketplace(models.TextChoices):
    MTURK = "mturk", "Amazon Mechanical Turk"
    PROLIFIC = "prolific", "Prolific"


class Campaign(models.Model):
    """A labelling job a curator runs on a marketplace: what is asked, and what it pays."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class BonusRule(models.TextChoices):
        NONE = "none", "No bonus"
        PER_ACCEPTED = "per_accepted", "Bonus per accepted answer"
        ACCURACY = "accuracy", "Bonus when control accuracy reaches the threshold"

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    marketplace = models.CharField(max_length=10, choices=Marketplace.choices)
    state = models.CharField(max_length=6, choices=State.choices, default=State.OPEN)
    categories = models.ManyToManyField(Category, related_name="campaigns")
    kinds = models.JSONField(help_text="Task kinds served (labeling.models.TaskKind values).")
    reward_cents = models.PositiveIntegerField(help_text="Paid per answered task, cents.")
    bonus_rule = models.CharField(max_length=12, choices=BonusRule.choices, default="none")
    bonus_cents = models.PositiveIntegerField(
        default=0,
        help_text="per_accepted: cents per accepted answer; accuracy: cents per assignment.",
    )
    bonus_threshold = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="accuracy rule: the control accuracy (0-1) an assignment must reach.",
    )
    tasks_per_assignment = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1)], help_text="Tasks in one marketplace assignment."
    )
    cap_per_worker = models.PositiveIntegerField(
        validators=[MinValueValidator(1)], help_text="Most tasks one worker may do here."
    )
    prolific_study_id = models.CharField(
        max_length=24,
        blank=True,
        validators=[RegexValidator(r"^[0-9a-f]{24}$", "24 lower-case hex digits.")],
        help_text="Prolific: when set, only links of this study (STUDY_ID) are let in.",
    )
    completion_url = models.URLField(
        blank=True, help_text="Prolific: where a finished participant is sent (with its cc=)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(bonus_threshold__gte=0, bonus_threshold__lte=1),
                name="campaign_bonus_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(tasks_per_assignment__gte=1, cap_per_worker__gte=1),
                name="campaign_positive_limits",
            ),
        ]

    def __str__(self) -> str:
        return self.name


CAMPAIGN_FIELDS = (
    "name",
    "slug",
    "marketplace",
    "categories",
    "kinds",
    "reward_cents",
    "bonus_rule",
    "bonus_cents",
    "bonus_threshold",
    "tasks_per_assignment",
    "cap_per_worker",
    "prolific_study_id",
    "completion_url",
)
"""What a curator sets when opening a campaign (the form and the API)."""


class ExternalWorker(models.Model):
    """The binding of a marketplace's worker id to the CrowdNet account made for it. Entry
    looks accounts up here only, never by username, so a link can't reach another account."""

    marketplace = models.CharField(max_length=10, choices=Marketplace.choices)
    external_id = models.CharField(max_length=64)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_worker"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["marketplace", "external_id"], name="external_worker_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.marketplace}:{self.external_id}"


class Assignment(models.Model):
    """One marketplace assignment (MTurk assignmentId, Prolific SESSION_ID) of one worker."""

    class State(models.TextChoices):
        WORKING = "working", "Working"
        FINISHED = "finished", "Finished: code issued"
        SUBMITTED = "submitted", "Submitted: code claimed"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    worker = models.ForeignKey(ExternalWorker, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=64, help_text="assignmentId or SESSION_ID.")
    group_id = models.CharField(max_length=64, help_text="hitId or STUDY_ID.")
    submit_to = models.CharField(
        max_length=100, blank=True, help_text="MTurk: the validated turkSubmitTo origin."
    )
    state = models.CharField(max_length=9, choices=State.choices, default=State.WORKING)
    completion_code = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.CharField(max_length=700, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "external_id"], name="assignment_external_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.external_id}"


class AssignmentTask(models.Model):
    """A micro-task served under an assignment."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="tasks")
    task = models.OneToOneField(MicroTask, on_delete=models.CASCADE, related_name="assignment")

    def __str__(self) -> str:
        return f"task {self.task_id} of {self.assignment_id}"


class LedgerEntry(models.Model):
    """What a worker earned on an approved assignment: the base pay, or the bonus and the
    control accuracy (right / seen) it was based on."""

    class Kind(models.TextChoices):
        BASE = "base", "Base pay"
        BONUS = "bonus", "Bonus"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ledger")
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="ledger")
    worker = models.ForeignKey(ExternalWorker, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    amount_cents = models.PositiveIntegerField()
    tasks = models.PositiveIntegerField(help_text="Answered tasks of the assignment.")
    accepted_answers = models.PositiveIntegerField(default=0)
    control_seen = models.PositiveIntegerField(default=0)
    control_correct = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "kind"], name="ledger_once_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_cents} c for {self.assignment_id}"
