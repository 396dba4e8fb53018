"""Micro-tasks and what workers answer: leases, task items, votes, boxes, gold, worker profiles."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from jobs.models import Job, JobStatus
from labeling.models.catalog import Candidate, Category


class TaskKind(models.TextChoices):
    VERIFY = "verify", "Is there a <category>?"
    GRID = "grid", "Select all images with a <category>"
    DRAW = "draw", "Draw a box around each <category>"
    VERIFY_BOX = "verify_box", "Is this box tight around one <category>?"
    COVERAGE = "coverage", "Is every <category> boxed?"


QUESTION_OF_KIND = {
    "verify": "label",
    "grid": "label",
    "draw": "draw",
    "verify_box": "box",
    "coverage": "coverage",
}


class WorkerProfile(models.Model):
    """A worker's running record: answers, gold (never shown to them), and quality-gate state."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    answered_tasks = models.PositiveIntegerField(default=0)
    answered_items = models.PositiveIntegerField(default=0)
    seconds_total = models.FloatField(
        default=0.0, help_text="Time on task over all answered items, seconds (for speed)."
    )
    streak = models.PositiveIntegerField(default=0, help_text="Tasks answered in a row today.")
    last_answer_at = models.DateTimeField(null=True, blank=True)
    gold_seen = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    # Sequential-test evidence since the last resume (log likelihood ratios, nats): see
    # labeling.crowd.gates.
    gold_evidence = models.FloatField(default=0.0)
    gold_evidence_yes = models.FloatField(default=0.0)
    gold_evidence_no = models.FloatField(default=0.0)
    fast_evidence = models.FloatField(default=0.0)
    said_yes_evidence = models.FloatField(default=0.0)
    said_no_evidence = models.FloatField(default=0.0)
    # The peer-agreement gate's, over his label votes' credits (below), written with them.
    peer_evidence = models.FloatField(default=0.0)
    peer_evidence_yes = models.FloatField(default=0.0)
    peer_evidence_no = models.FloatField(default=0.0)
    # Blind checks: his label votes on items a curator decided afterwards
    # (labeling.services.contested), and that gate's evidence (labeling.crowd.gates.blind_pause).
    # (defaults in the database too: rows written in SQL, as the benches seed them, get them)
    blind_seen = models.PositiveIntegerField(default=0, db_default=0)
    blind_correct = models.PositiveIntegerField(default=0, db_default=0)
    blind_evidence = models.FloatField(default=0.0, db_default=0.0)
    paused = models.BooleanField(default=False)
    pause_reason = models.CharField(max_length=300, blank=True, help_text="Shown to the worker.")
    pause_detail = models.CharField(
        max_length=300, blank=True, help_text="The evidence behind a gate's pause, for curators."
    )
    paused_at = models.DateTimeField(null=True, blank=True)
    resumed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a curator last resumed him: the gates' evidence counts his answers "
        "since (null: never, or before this was kept).",
    )
    recheck_due = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Since when the decisions his votes carried are to be taken again (set with "
        "a pause or a loss of weight, in the same transaction; cleared once they have been).",
    )
    # Written by the consensus re-aggregation (Dawid-Skene over every label vote).
    em_accuracy = models.FloatField(null=True, blank=True)
    spammer_score = models.FloatField(
        null=True, blank=True, help_text="0 answers like a coin, 1 like a perfect worker."
    )
    confusion = models.JSONField(
        null=True, blank=True, help_text="[[P(no|no), P(yes|no)], [P(no|yes), P(yes|yes)]]"
    )
    label_votes = models.PositiveIntegerField(default=0, help_text="As of the last aggregation.")
    # Written live as the crowd decides items the worker voted on (labeling.consensus.live_coins):
    # expected counts, each vote weighted by what the item's other votes said the truth was.
    peer_yes_items = models.FloatField(default=0.0)
    peer_yes_said_yes = models.FloatField(default=0.0)
    peer_no_items = models.FloatField(default=0.0)
    peer_no_said_no = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"profile of {self.user_id}"


class GoldAnswer(models.Model):
    """The known answer to a candidate's question; workers can never tell which items these are."""

    candidate = models.OneToOneField(Candidate, on_delete=models.CASCADE, related_name="gold")
    # The candidate's category, copied (gold_mark writes it; a candidate never changes its
    # category), so that a grid reads only its own category's controls (gold_category).
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    answer = models.BooleanField(help_text="True when the image shows the category.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["category", "candidate"], name="gold_category"),
        ]

    def __str__(self) -> str:
        return f"gold {self.candidate_id}: {self.answer}"


class Box(models.Model):
    """A box a worker drew, in image pixels (after EXIF orientation), and its verification."""

    class State(models.TextChoices):
        PROPOSED = "proposed", "Waiting for verification"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="boxes")
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    x0 = models.FloatField()
    y0 = models.FloatField()
    x1 = models.FloatField()
    y1 = models.FloatField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PROPOSED)
    yes_votes = models.PositiveIntegerField(default=0)
    no_votes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(x0__gte=0, y0__gte=0, x1__gt=F("x0"), y1__gt=F("y0")),
                name="box_geometry",
            ),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(state="proposed"), name="box_proposed"),
        ]

    def __str__(self) -> str:
        return f"box {self.uid}"


class MicroTask(models.Model):
    """One leased question for one worker: a verify, a 3x3 grid, a drawing, a box check or a
    coverage check. ``response`` keeps what the answer returned, so a retried POST gets it back."""

    class Status(models.TextChoices):
        LEASED = "leased", "Leased"
        ANSWERED = "answered", "Answered"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="micro_tasks"
    )
    kind = models.CharField(max_length=10, choices=TaskKind.choices)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.LEASED)
    issued_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    # NULL, not "", when absent: the unique (worker, client_token) must not catch every task.
    client_token = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    response = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "client_token"], name="micro_task_client_token_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["worker", "status", "expires_at"], name="micro_task_open"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} task {self.uid}"


class TaskItem(models.Model):
    """One cell of a task: a candidate (verify, grid, draw, coverage) or a box (verify_box).

    ``is_gold`` and ``control_answer`` are server-side only; serializers never read them."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.ForeignKey(MicroTask, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField()
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="task_items")
    box = models.ForeignKey(Box, null=True, blank=True, on_delete=models.CASCADE)
    is_gold = models.BooleanField(default=False)
    control_answer = models.BooleanField(
        null=True,
        blank=True,
        help_text="A control item's known answer when it was served: the curated gold answer, "
        "or the crowd's confident decision for a category without gold.",
    )
    leased_until = models.DateTimeField(help_text="Copy of the task's expiry, for pool counts.")

    class Meta:
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="task_item_position"),
        ]
        indexes = [
            models.Index(fields=["candidate", "leased_until"], name="task_item_lease"),
            # a pool item's open leases, probed for every row a lease walks (leases.py): the
            # exact match keeps the planner off a bitmap of every open lease
            models.Index(
                fields=["candidate", "leased_until"],
                condition=Q(box__isnull=True),
                name="task_item_candidate_lease",
            ),
            models.Index(fields=["box", "leased_until"], name="task_item_box_lease"),
            # the candidates served as controls, which the model's disagreements leave out
            models.Index(fields=["candidate"], condition=Q(is_gold=True), name="task_item_control"),
        ]

    def __str__(self) -> str:
        return f"item {self.position} of {self.task_id}"


PEER_PENDING = (
    Q(peer_p_yes__isnull=False, peer_applied__isnull=True)
    | Q(peer_p_yes__isnull=True, peer_applied__isnull=False)
    | Q(peer_p_yes__lt=F("peer_applied"))
    | Q(peer_p_yes__gt=F("peer_applied"))
)
"""Votes whose credit (peer_p_yes) differs from the one in their worker's record."""


class Vote(models.Model):
    """One worker's answer about one item. ``counted`` is false for answers that must not move
    consensus: from a paused worker, or in a task whose control item was answered wrong."""

    class Answer(models.TextChoices):
        YES = "yes", "Yes"
        NO = "no", "No"
        UNSURE = "unsure", "Can't tell"

    worker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes"
    )
    task = models.ForeignKey(MicroTask, on_delete=models.CASCADE, related_name="votes")
    kind = models.CharField(max_length=10, choices=TaskKind.choices)
    question = models.CharField(
        max_length=10, help_text="label (verify and grid), draw, box or coverage."
    )
    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="votes")
    box = models.ForeignKey(Box, null=True, blank=True, on_delete=models.CASCADE)
    answer = models.CharField(max_length=6, choices=Answer.choices)
    is_gold = models.BooleanField(default=False)
    correct = models.BooleanField(null=True, help_text="For gold items: did it match the gold?")
    counted = models.BooleanField(default=True)
    peer_p_yes = models.FloatField(
        null=True,
        blank=True,
        help_text="P(yes) from the item's other votes that this vote is credited with in its "
        "worker's peer record (null: not credited); a later decision replaces it.",
    )
    peer_applied = models.FloatField(
        null=True,
        blank=True,
        help_text="The peer_p_yes whose credit is in the worker's record now (null: none); "
        "where the two differ the credit waits to be added (worker_coins.peer_credits_apply).",
    )
    blind_right = models.BooleanField(
        null=True,
        blank=True,
        help_text="Whether this label vote matched a curator's later decision on its item (a "
        "blind check, in its worker's record; null: not checked).",
    )
    seconds = models.FloatField(help_text="Time on task per item, seconds.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "candidate", "question"],
                condition=Q(box__isnull=True),
                name="vote_once_per_question",
            ),
            models.UniqueConstraint(
                fields=["worker", "box"], condition=Q(box__isnull=False), name="vote_once_per_box"
            ),
        ]
        indexes = [
            # label votes per hour on the progress dashboard: a range of the recent ones
            models.Index(
                fields=["created_at"], condition=Q(question="label"), name="vote_label_time"
            ),
            # credits written but not yet in their workers' records (a sweep finds them)
            models.Index(fields=["id"], condition=PEER_PENDING, name="vote_peer_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.answer} by {self.worker_id} on {self.candidate_id}"


class ObjectBox(models.Model):
    """One object on an image: the boxes several workers drew around it, fused into one."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="object_boxes")
    x0 = models.FloatField()
    y0 = models.FloatField()
    x1 = models.FloatField()
    y1 = models.FloatField()
    score = models.FloatField(help_text="Share of the image's drawers' weight behind this box.")
    drawers = models.PositiveSmallIntegerField(help_text="Workers whose boxes were fused.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"object on {self.candidate_id}"


class ConsensusRun(Job):
    """One Dawid-Skene re-aggregation over every label vote, and what it changed; a background
    job (jobs.models.Job), at most one running at a time (a partial unique index)."""

    Status = JobStatus

    class Trigger(models.TextChoices):
        """What started the run."""

        SCHEDULE = "schedule", "Schedule (beat)"
        MANUAL = "manual", "Manual (a curator)"
        SIMULATOR = "simulator", "The crowd simulator"

    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    items = models.PositiveIntegerField(default=0)
    votes = models.PositiveIntegerField(default=0)
    workers = models.PositiveIntegerField(default=0)
    iterations = models.PositiveIntegerField(default=0)
    warm_start = models.BooleanField(default=False)
    changed = models.PositiveIntegerField(default=0, help_text="Candidates whose state changed.")
    log_likelihood = models.FloatField(null=True, blank=True)
    class_priors = models.JSONField(null=True, blank=True)
    seconds = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status=JobStatus.RUNNING),
                name="one_running_consensus_run",
            ),
        ]

    def __str__(self) -> str:
        return f"consensus run {self.pk} ({self.status})"


class ConfidenceTable(models.Model):
    """ImageNet's per-category table: P(good | y yes and n no votes), from a calibration sample."""

    category = models.OneToOneField(
        Category, on_delete=models.CASCADE, related_name="confidence_table"
    )
    cap = models.PositiveSmallIntegerField()
    table = models.JSONField(help_text="table[y][n], null where y + n > cap.")
    prior = models.FloatField()
    calibration_items = models.PositiveIntegerField()
    fitted_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"confidence table of {self.category_id}"
