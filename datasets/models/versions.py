"""Dataset versions: frozen snapshots of accepted labels, and their items (an image, its class
index and split), which training trains on and exports write out."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from labeling.models import Image


class DatasetVersion(models.Model):
    """A frozen snapshot of accepted labels with a train/val split that is stable per image."""

    number = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    classes = models.JSONField(help_text='[{"id", "slug", "name"}] in label order.')
    counts = models.JSONField(help_text='{"train": [n per class], "val": [n per class]}')
    val_share = models.FloatField()
    images = models.PositiveIntegerField()
    labels_at = models.PositiveIntegerField(
        default=0, help_text="Accepted labels in the collection when it was taken."
    )
    skipped = models.JSONField(default=dict, help_text="Images left out, by reason.")

    class Meta:
        db_table = "training_datasetversion"  # the table it had in training
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"dataset v{self.number}"


class DatasetItem(models.Model):
    """One image of a version, with its class index and split."""

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VAL = "val", "Validation"

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    label = models.PositiveSmallIntegerField()
    split = models.CharField(max_length=5, choices=Split.choices)
    boxes = models.JSONField(default=list, blank=True, help_text="Fused object boxes, if any.")

    class Meta:
        db_table = "training_datasetitem"  # the table it had in training
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "image"], name="dataset_item_once"),
        ]
        indexes = [models.Index(fields=["version", "split"], name="dataset_item_split")]

    def __str__(self) -> str:
        return f"{self.image_id} in v{self.version_id}"
