"""The model side's data: training runs on dataset versions (datasets.models) with their
epochs, evaluation sets, and which run is the current model. No logic in save() and no
signals: writes live in training.services."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from datasets.models import DatasetVersion
from jobs.models import Job, JobStatus
from labeling.models import Image


class TrainingRun(Job):
    """One fine-tuning of a backbone on a dataset version, and what came of it; a background
    job (jobs.models.Job: status, attempt, owner, heartbeat)."""

    Status = JobStatus

    class Mode(models.TextChoices):
        """Which layers train; the same names as training.ml.catalog.MODES (pure, no Django)."""

        FEATURE_EXTRACTION = "feature_extraction", "Feature extraction (head only)"
        FINE_TUNE = "fine_tune", "Fine-tune (last block too)"
        FULL = "full", "Full (every layer)"

    class Trigger(models.TextChoices):
        """What started the run."""

        MANUAL = "manual", "Manual (a curator, the API or the command line)"
        SCHEDULE = "schedule", "Schedule (the automatic retrain)"

    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="runs")
    backbone = models.CharField(max_length=40)
    weights = models.CharField(max_length=300, help_text="imagenet, random, or checkpoint:...")
    mode = models.CharField(max_length=20, choices=Mode.choices)
    params = models.JSONField(default=dict, help_text="epochs, batch_size, lr, image_size...")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # True while queued or running, NULL after: unique, so the database itself lets only one
    # run go at a time, whoever starts it.
    active = models.BooleanField(null=True, blank=True, unique=True, default=True, editable=False)
    device = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    top1_error = models.FloatField(null=True, blank=True)
    top5_error = models.FloatField(null=True, blank=True)
    per_class_error = models.JSONField(null=True, blank=True)
    confusion = models.JSONField(null=True, blank=True)
    best_epoch = models.PositiveSmallIntegerField(null=True, blank=True)
    checkpoint = models.CharField(
        max_length=300, blank=True, help_text="Name in the checkpoints store (run-N.pt)."
    )
    checkpoint_sha256 = models.CharField(max_length=64, blank=True)
    current = models.BooleanField(default=False, help_text="The model that predicts.")
    architecture = models.JSONField(
        null=True,
        blank=True,
        help_text="The layer table at the run's image size, written when it starts: "
        '{"image_size", "layers": [{"name", "kind", "input", "output", "params", "trains"}]}.',
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["current"], condition=Q(current=True), name="one_current_model"
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_run_live")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.backbone}, {self.status})"


class TrainingEpoch(models.Model):
    """One epoch of a run, written as it ends, so dashboards can draw live curves."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="epochs")
    epoch = models.PositiveSmallIntegerField()
    train_loss = models.FloatField(null=True, help_text="None: not finite (the loss diverged).")
    val_loss = models.FloatField(null=True, help_text="None: not finite (the loss diverged).")
    top1_error = models.FloatField()
    top5_error = models.FloatField()
    images_per_second = models.FloatField()
    seconds = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "epoch"]
        constraints = [
            models.UniqueConstraint(fields=["run", "epoch"], name="training_epoch_once"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} epoch {self.epoch}"


class ValidationMistake(models.Model):
    """A validation image the run's best epoch gets wrong, among the most wrong (the lowest
    probability on the crowd's label first): often a mislabelled image, else a hard one."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="mistakes")
    rank = models.PositiveSmallIntegerField(help_text="1 is the most wrong.")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    label = models.PositiveSmallIntegerField(help_text="The crowd's class index.")
    predicted = models.PositiveSmallIntegerField(help_text="The model's top-1 class index.")
    confidence = models.FloatField(help_text="The model's probability on its answer.")
    label_probability = models.FloatField(help_text="The model's probability on the label.")

    class Meta:
        ordering = ["run", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "rank"], name="validation_mistake_rank"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} mistake {self.rank}"


class EvaluationSet(models.Model):
    """A frozen held-out test set for one set of categories, as ILSVRC's test set was: images
    reserved by hash (never in any version's train split), labels that got extra scrutiny. It
    changes only by a new evaluation version (a higher ``number`` for the same ``category_key``),
    which a curator asks for; every score says which version it came from."""

    category_key = models.CharField(
        max_length=1000, help_text="The categories' ids, sorted, comma-separated."
    )
    number = models.PositiveIntegerField(help_text="The evaluation version for these categories.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    classes = models.JSONField(help_text='[{"id", "slug", "name"}] in label order.')
    counts = models.JSONField(help_text="[n per class], in label order.")
    images = models.PositiveIntegerField()
    note = models.TextField(blank=True, help_text="Why this version was made, in words.")

    class Meta:
        ordering = ["category_key", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["category_key", "number"], name="evaluation_once"),
        ]

    def __str__(self) -> str:
        return f"evaluation set {self.category_key} v{self.number}"


class EvaluationItem(models.Model):
    """One image of an evaluation set with its class index (label order of the set)."""

    evaluation = models.ForeignKey(EvaluationSet, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    label = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "image"], name="evaluation_item_once"),
        ]

    def __str__(self) -> str:
        return f"{self.image_id} in {self.evaluation_id}"


class EvaluationScore(models.Model):
    """A run's error on one evaluation set, with its answer per image (the set's item order),
    so two models can be compared on the same images (a paired test)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="scores")
    evaluation = models.ForeignKey(EvaluationSet, on_delete=models.CASCADE, related_name="scores")
    created_at = models.DateTimeField(auto_now_add=True)
    images = models.PositiveIntegerField()
    top1_error = models.FloatField()
    top5_error = models.FloatField()
    top1_correct = models.TextField(
        help_text="'1'/'0' per item in the set's item order: top-1 right or not."
    )
    top5_correct = models.TextField(help_text="'1'/'0' per item: the label among the top 5.")

    class Meta:
        ordering = ["evaluation", "run"]
        constraints = [
            models.UniqueConstraint(fields=["run", "evaluation"], name="evaluation_score_once"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} on {self.evaluation_id}"


class Promotion(models.Model):
    """A decision to make a run the current model or not: both models on the same evaluation
    images at decision time, with McNemar's test on the images where they differ."""

    candidate = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="promotions")
    incumbent = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evaluation = models.ForeignKey(
        EvaluationSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The curator who promoted by hand; empty for an automatic decision.",
    )
    promoted = models.BooleanField()
    candidate_top1_error = models.FloatField(null=True, blank=True)
    incumbent_top1_error = models.FloatField(null=True, blank=True)
    only_candidate_right = models.PositiveIntegerField(default=0)
    only_incumbent_right = models.PositiveIntegerField(default=0)
    p_value = models.FloatField(null=True, blank=True, help_text="McNemar, one-sided, exact.")
    margin = models.FloatField(default=0.0)
    reason = models.TextField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"promotion of run {self.candidate_id}: {self.promoted}"
