"""Users and roles, categories, images, candidates and imports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q

from jobs.models import Job, JobStatus
from labeling.usernames import validate_username
from labeling.wordnet_ids import (
    CATEGORY_NAME_MAX_LENGTH,
    WNID_MAX_LENGTH,
    WNID_MESSAGE,
    WNID_PATTERN,
)

validate_wnid = RegexValidator(WNID_PATTERN, WNID_MESSAGE, code="wnid")


class User(AbstractUser):
    """A person: a crowd worker who labels, or a curator who runs the project.

    Staff are curators too."""

    class Role(models.TextChoices):
        WORKER = "worker", "Worker"
        CURATOR = "curator", "Curator"

    # AbstractUser's field with the project's one username rule, so that the admin and
    # createsuperuser apply it too, not only the API and the forms.
    username = models.CharField(
        "username",
        max_length=150,
        unique=True,
        help_text="Letters, digits and @ . + - _ only; no two dots in a row.",
        validators=[validate_username],
        error_messages={"unique": "A user with that username already exists."},
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.WORKER)

    @property
    def is_curator(self) -> bool:
        """Curators import, categorise, export, train and watch dashboards."""
        return self.is_active and (self.role == self.Role.CURATOR or self.is_staff)


class Invitation(models.Model):
    """A one-time link a curator sends so that a worker can create their own account."""

    token = models.CharField(max_length=64, unique=True)
    note = models.CharField(max_length=200, blank=True, help_text="Who the invitation is for.")
    role = models.CharField(max_length=16, choices=User.Role.choices, default=User.Role.WORKER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_by = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invitation",
    )
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invitation {self.note or self.pk}"


class CategoryQuerySet(models.QuerySet["Category"]):
    def active(self) -> CategoryQuerySet:
        """Categories not archived: the ones the crowd works on and imports may go into."""
        return self.filter(archived_at__isnull=True)


class Category(models.Model):
    """A synset-like concept that images are labelled with; parents make a hierarchy.

    An archived category keeps all its data (and its place in existing dataset versions) but
    the crowd gets no task about it and new imports can't choose it."""

    name = models.CharField(max_length=CATEGORY_NAME_MAX_LENGTH)
    slug = models.SlugField(max_length=100, unique=True)
    definition = models.TextField(blank=True, help_text="Shown to workers with every question.")
    wnid = models.CharField(
        max_length=WNID_MAX_LENGTH,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_wnid],
        help_text="WordNet-style id such as n02123045.",
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    target_images = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Accepted images wanted (ImageNet aimed at 500-1,000); empty: the default.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="When a curator archived it; empty while in use."
    )

    objects = CategoryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=models.F("id")), name="category_not_own_parent"
            ),
            # folders of exports may be named after it: nothing that could climb a path
            models.CheckConstraint(
                condition=Q(wnid__isnull=True) | Q(wnid__regex=WNID_PATTERN),
                name="category_wnid_shape",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def ancestry_problem(self, parent: Category | None) -> str | None:
        """Why ``parent`` can't be this category's parent (it is this category or below it,
        or its own parents loop), or None. Walks up at most once per category."""
        seen: set[int] = set()
        node = parent
        while node is not None:
            if self.pk is not None and node.pk == self.pk:
                return "A category can't be its own ancestor."
            if node.pk in seen:
                return "That parent's own parents make a loop; give it another parent first."
            seen.add(node.pk)
            node = node.parent
        return None

    def clean(self) -> None:
        """The tree check, so that the admin and full_clean refuse a loop of parents."""
        problem = self.ancestry_problem(self.parent) if self.parent_id else None
        if problem:
            raise ValidationError({"parent": problem})


class ImageSource(models.TextChoices):
    UPLOAD = "upload", "Upload"
    ARCHIVE = "archive", "Archive"
    FOLDER = "folder", "Folder"
    URL = "url", "URL list"
    PAGE = "page", "Web page"


class Image(models.Model):
    """One stored picture with its derived copies; files live behind Django's storage API.

    ``phash`` is a 64-bit perceptual hash stored as a signed integer; ``phash_band0..4`` split
    it into 13/13/13/13/12-bit bands so that any hash within Hamming distance 4 shares at least
    one band exactly (pigeonhole), which turns near-duplicate search into indexed lookups.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    file = models.FileField(max_length=300)
    thumbnail = models.FileField(max_length=300)
    train_copy = models.FileField(max_length=300)
    sha256 = models.CharField(max_length=64, unique=True)
    phash = models.BigIntegerField(help_text="64-bit DCT perceptual hash, signed.")
    phash256 = models.CharField(max_length=64, help_text="256-bit perceptual hash, hex.")
    phash_band0 = models.IntegerField()
    phash_band1 = models.IntegerField()
    phash_band2 = models.IntegerField()
    phash_band3 = models.IntegerField()
    phash_band4 = models.IntegerField()
    width = models.PositiveIntegerField(help_text="Pixels, after EXIF orientation.")
    height = models.PositiveIntegerField(help_text="Pixels, after EXIF orientation.")
    format = models.CharField(max_length=10)
    byte_size = models.PositiveBigIntegerField()
    source = models.CharField(max_length=10, choices=ImageSource.choices)
    source_url = models.URLField(max_length=2000, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(width__gt=0, height__gt=0), name="image_has_size"),
        ]
        # Covering indexes: a band lookup is an index-only scan on PostgreSQL, never a heap visit.
        indexes = [
            models.Index(fields=[f"phash_band{i}"], include=["id", "phash"], name=f"image_band{i}")
            for i in range(5)
        ]

    def __str__(self) -> str:
        return f"image {self.uid}"


class ImageArrival(models.Model):
    """Every time a file arrived: the stored image it became, or the one it duplicated."""

    class Kind(models.TextChoices):
        NEW = "new", "Stored as new"
        EXACT = "exact", "Exact duplicate"
        NEAR = "near", "Near duplicate"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="arrivals")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    distance = models.PositiveSmallIntegerField(
        default=0, help_text="Hamming distance between perceptual hashes, bits."
    )
    sha256 = models.CharField(max_length=64, help_text="Of the bytes that arrived.")
    source = models.CharField(max_length=10, choices=ImageSource.choices)
    source_url = models.URLField(max_length=2000, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    category = models.ForeignKey(Category, null=True, on_delete=models.SET_NULL)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} arrival of {self.image_id}"


class Candidate(models.Model):
    """The question "does this image show <category>?", and where the crowd stands on it."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        NEEDS_REVIEW = "needs_review", "Needs review"

    class BoxState(models.TextChoices):
        """Where an accepted image stands in the box chain (draw, verify, coverage)."""

        NONE = "none", "No boxes wanted"
        DRAW = "draw", "Needs drawing"
        VERIFY = "verify", "Boxes being verified"
        COVERAGE = "coverage", "Coverage check"
        DONE = "done", "Every instance boxed"
        ABSENT = "absent", "None present, by independent workers"
        REVIEW = "review", "Drawers disagree: for a curator"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="candidates")
    # PROTECT: a category's crowd data is archived with it, never cascaded away
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="candidates")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    yes_votes = models.PositiveIntegerField(default=0)
    no_votes = models.PositiveIntegerField(default=0)
    unsure_votes = models.PositiveIntegerField(default=0)
    votes_cast = models.GeneratedField(
        expression=F("yes_votes") + F("no_votes") + F("unsure_votes"),
        output_field=models.IntegerField(),
        db_persist=True,
    )
    confidence = models.FloatField(default=0.0, help_text="P(the state is right), 0-1.")
    posterior = models.FloatField(
        default=0.5, help_text="The crowd's P(the image shows the category), 0-1."
    )
    override = models.BooleanField(
        null=True, blank=True, help_text="A curator's decision; it wins over the crowd's."
    )
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    blind_checked = models.BooleanField(
        default=False,
        db_default=False,  # rows written in SQL (the benches' seeds) get it too
        help_text="A curator settled it while it was a contested call: his answer checks the "
        "label votes cast on it (labeling.services.contested).",
    )
    checks_due = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Since when a curator's decision on a contested call is to check the votes "
        "cast on it (labeling.services.contested.checks_apply; set with the decision, cleared "
        "once done).",
    )
    model_p = models.FloatField(
        null=True,
        blank=True,
        help_text="The current model's P(the image shows the category); never shown to workers.",
    )
    priority = models.IntegerField(default=0, help_text="Higher is asked first.")
    votes_needed = models.PositiveSmallIntegerField(
        default=3, help_text="Counted verify votes wanted before consensus decides."
    )
    box_state = models.CharField(max_length=10, choices=BoxState.choices, default=BoxState.NONE)
    # The verify lease that fills an item (votes cast + open leases = votes needed) notes when
    # its first lease ends, and at which votes_needed: until then the picks pass it by on the
    # row they read anyway instead of probing its leases (labeling.services.leases.ROOM).
    full_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Until when every vote this item still needs is leased (a pick's hint).",
    )
    full_needed = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The votes_needed full_until was noted at: a hint for fewer votes is void.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "category"], name="candidate_unique"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0.0, confidence__lte=1.0),
                name="candidate_confidence_range",
            ),
            models.CheckConstraint(
                condition=Q(posterior__gte=0.0, posterior__lte=1.0),
                name="candidate_posterior_range",
            ),
        ]
        indexes = [
            models.Index(fields=["category", "state"], name="candidate_cat_state"),
            # The task pool, in the order it is served: priority, then breadth-first. Items
            # with all their votes leave the index, so the walk never wades through them.
            models.Index(
                F("priority").desc(),
                F("votes_cast").desc(),
                "id",
                condition=Q(state="open", votes_cast__lt=F("votes_needed")),
                name="candidate_pool",
            ),
            # The same pool within one category: a grid's cells (labeling.services.grid_leases).
            models.Index(
                "category",
                F("priority").desc(),
                F("votes_cast").desc(),
                "id",
                condition=Q(state="open", votes_cast__lt=F("votes_needed")),
                name="candidate_grid_pool",
            ),
            # Each box stage in the order it is served (labeling.services.box_leases).
            models.Index(
                "box_state",
                F("priority").desc(),
                "id",
                condition=~Q(box_state="none"),
                name="candidate_box_stage",
            ),
            # Control items: the decided items next to a pool item, walked in id order within
            # its category (labeling.services.leases), never the whole category.
            models.Index(
                fields=["category", "id"],
                condition=Q(state__in=["accepted", "rejected"]),
                name="candidate_decided",
            ),
            # A task's examples: the category's most confident accepted items, read from the top.
            models.Index(
                "category",
                F("confidence").desc(),
                "id",
                condition=Q(state="accepted"),
                name="candidate_examples",
            ),
            # Curators' decisions whose votes wait to be checked (the commit hooks' sweep).
            models.Index(
                fields=["checks_due"],
                condition=Q(checks_due__isnull=False),
                name="candidate_checks_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image_id} in {self.category_id}?"


class ImportJob(Job):
    """One import run (upload, archive, folder, URL list or page) and its outcome report; a
    background job (jobs.models.Job: status, attempt, owner, heartbeat)."""

    Status = JobStatus

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=10, choices=ImageSource.choices)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    params = models.JSONField(default=dict, help_text="What to fetch: urls or page_url.")
    added = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list, help_text="One row per item: name, outcome, reason.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.source} import {self.uid}"
