"""Serializers: shape and validate input, no side effects."""

from __future__ import annotations

from typing import Any

from django.core.validators import slug_re as SLUG
from django.urls import reverse
from rest_framework import serializers

from labeling.models import Candidate, Category, Image, ImportJob, Invitation, User
from labeling.services.accounts import validate_username


class CategorySlugField(serializers.SlugRelatedField):
    """A category by its slug; a value that is no slug (a NUL character, which PostgreSQL
    refuses in a query, or anything else a slug can't hold) is a 400 before any lookup."""

    default_error_messages = {
        **serializers.SlugRelatedField.default_error_messages,
        "not_a_slug": "Give a category by its slug.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not SLUG.fullmatch(data):
            self.fail("not_a_slug")
        return super().to_internal_value(data)


class CategorySerializer(serializers.ModelSerializer):
    parent = CategorySlugField(
        slug_field="slug", queryset=Category.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Category
        fields = [
            "id",
            "name",
            "slug",
            "definition",
            "wnid",
            "parent",
            "target_images",
            "created_at",
            "archived_at",
        ]
        read_only_fields = ["id", "created_at", "archived_at"]

    def validate_wnid(self, value: str | None) -> str | None:
        """Blank means none; the shape is checked by the model field's validator."""
        return value or None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problem = (self.instance or Category()).ancestry_problem(attrs.get("parent"))
        if problem:
            raise serializers.ValidationError({"parent": problem})
        return attrs


class CandidateBriefSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Candidate
        fields = ["category", "state", "yes_votes", "no_votes", "confidence"]


class ImageLinksMixin(serializers.Serializer):
    """The links of a row's ``image``: its thumbnail and its original (curators only)."""

    thumbnail_url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    def get_thumbnail_url(self, row: Any) -> str:
        return reverse("image-file", args=[row.image.uid, "thumb"])

    def get_image_url(self, row: Any) -> str:
        return reverse("image-file", args=[row.image.uid, "original"])


class ImageSerializer(serializers.ModelSerializer):
    thumbnail_url = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    candidates = CandidateBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Image
        fields = [
            "uid",
            "width",
            "height",
            "format",
            "byte_size",
            "source",
            "source_url",
            "original_name",
            "created_at",
            "thumbnail_url",
            "file_url",
            "candidates",
        ]

    def get_thumbnail_url(self, image: Image) -> str:
        return reverse("image-file", args=[image.uid, "thumb"])

    def get_file_url(self, image: Image) -> str:
        return reverse("image-file", args=[image.uid, "original"])


def _import_target() -> CategorySlugField:
    """A category for new images, by slug; archived ones take none."""
    return CategorySlugField(slug_field="slug", queryset=Category.objects.active())


class UploadSerializer(serializers.Serializer):
    category = _import_target()
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True), allow_empty=False
    )


class ArchiveUploadSerializer(serializers.Serializer):
    category = _import_target()
    archive = serializers.FileField()


class ScrapeSerializer(serializers.Serializer):
    category = _import_target()
    urls = serializers.ListField(child=serializers.CharField(max_length=2000), required=False)
    page_url = serializers.URLField(max_length=2000, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_urls, has_page = bool(attrs.get("urls")), bool(attrs.get("page_url"))
        if has_urls == has_page:
            raise serializers.ValidationError("Give either urls (a list) or page_url, not both.")
        return attrs


class ReportItemSerializer(serializers.Serializer):
    name = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["added", "duplicate", "rejected"])
    reason = serializers.CharField(required=False)
    image_uid = serializers.UUIDField(required=False)
    duplicate_of = serializers.UUIDField(required=False)
    distance = serializers.IntegerField(required=False)


class IngestReportSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    items = ReportItemSerializer(many=True)


class ImportJobSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    report = ReportItemSerializer(many=True, read_only=True)

    class Meta:
        model = ImportJob
        fields = [
            "uid",
            "source",
            "category",
            "status",
            "params",
            "added",
            "duplicates",
            "rejected",
            "report",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class UserSerializer(serializers.ModelSerializer):
    is_curator = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_curator", "is_active", "date_joined"]
        read_only_fields = fields


class WorkerCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[validate_username])
    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    email = serializers.EmailField(required=False, allow_blank=True)


class InvitationCreateSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=User.Role.choices, default=User.Role.WORKER)


class InvitationSerializer(serializers.ModelSerializer):
    url = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "note", "role", "created_at", "expires_at", "url"]
