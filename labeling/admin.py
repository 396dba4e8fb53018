"""Django admin for everything on the crowd side."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from labeling.models import (
    Candidate,
    Category,
    DemoTruth,
    Image,
    ImageArrival,
    ImportJob,
    Invitation,
    User,
)


@admin.register(User)
class CrowdUserAdmin(UserAdmin):
    list_display = ["username", "role", "is_staff", "is_active", "date_joined"]
    list_filter = ["role", "is_staff", "is_active"]
    fieldsets = (*UserAdmin.fieldsets, ("CrowdNet", {"fields": ["role"]}))


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "wnid", "parent"]
    search_fields = ["name", "slug", "wnid"]
    prepopulated_fields = {"slug": ["name"]}
    list_select_related = ["parent"]


class CandidateInline(admin.TabularInline):
    model = Candidate
    extra = 0
    fields = ["category", "state", "yes_votes", "no_votes", "confidence", "priority"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["uid", "format", "width", "height", "source", "created_at"]
    list_filter = ["source", "format"]
    search_fields = ["uid", "sha256", "original_name", "source_url"]
    readonly_fields = [f.name for f in Image._meta.fields]
    inlines = [CandidateInline]


@admin.register(ImageArrival)
class ImageArrivalAdmin(admin.ModelAdmin):
    list_display = ["image", "kind", "distance", "source", "original_name", "created_at"]
    list_filter = ["kind", "source"]
    list_select_related = ["image"]


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ["image", "category", "state", "yes_votes", "no_votes", "confidence"]
    list_filter = ["state", "category"]
    list_select_related = ["image", "category"]


@admin.register(DemoTruth)
class DemoTruthAdmin(admin.ModelAdmin):
    list_display = ["candidate", "is_positive", "true_label"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["uid", "source", "category", "status", "added", "duplicates", "rejected"]
    list_filter = ["status", "source"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["note", "role", "created_by", "expires_at", "used_by"]
    readonly_fields = ["token"]
