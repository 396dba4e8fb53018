"""Django admin for everything on the crowd side."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from labeling.models import (
    Box,
    Candidate,
    Category,
    ConfidenceTable,
    ConsensusRun,
    GoldAnswer,
    Image,
    ImageArrival,
    ImportJob,
    Invitation,
    MicroTask,
    ObjectBox,
    User,
    Vote,
    WorkerProfile,
)
from labeling.services.consensus import decision_override
from labeling.services.microtasks import gold_mark, worker_resume


@admin.register(User)
class CrowdUserAdmin(UserAdmin):
    list_display = ["username", "role", "is_staff", "is_active", "date_joined"]
    list_filter = ["role", "is_staff", "is_active"]
    fieldsets = (*UserAdmin.fieldsets, ("CrowdNet", {"fields": ["role"]}))


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "wnid", "parent", "archived_at"]
    list_filter = [("archived_at", admin.EmptyFieldListFilter)]
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
    list_display = [
        "image",
        "category",
        "state",
        "yes_votes",
        "no_votes",
        "posterior",
        "confidence",
        "override",
    ]
    list_filter = ["state", "category", "override"]
    list_select_related = ["image", "category"]
    actions = ["gold_yes", "gold_no", "override_accept", "override_reject", "override_lift"]

    @admin.action(description="Override: accept (wins over the crowd)")
    def override_accept(self, request, queryset):  # type: ignore[no-untyped-def]
        for candidate in queryset:
            decision_override(candidate=candidate, accepted=True, by=request.user)

    @admin.action(description="Override: reject (wins over the crowd)")
    def override_reject(self, request, queryset):  # type: ignore[no-untyped-def]
        for candidate in queryset:
            decision_override(candidate=candidate, accepted=False, by=request.user)

    @admin.action(description="Lift the override: back to the crowd")
    def override_lift(self, request, queryset):  # type: ignore[no-untyped-def]
        for candidate in queryset:
            decision_override(candidate=candidate, accepted=None, by=request.user)

    @admin.action(description="Make gold: the image shows the category")
    def gold_yes(self, request, queryset):  # type: ignore[no-untyped-def]
        for candidate in queryset:
            gold_mark(candidate=candidate, answer=True, by=request.user)

    @admin.action(description="Make gold: the image does not show the category")
    def gold_no(self, request, queryset):  # type: ignore[no-untyped-def]
        for candidate in queryset:
            gold_mark(candidate=candidate, answer=False, by=request.user)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["uid", "source", "category", "status", "added", "duplicates", "rejected"]
    list_filter = ["status", "source"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["note", "role", "created_by", "expires_at", "used_by"]
    readonly_fields = ["token"]


@admin.register(WorkerProfile)
class WorkerProfileAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "answered_tasks",
        "gold_seen",
        "gold_correct",
        "em_accuracy",
        "spammer_score",
        "paused",
        "pause_reason",
    ]
    list_filter = ["paused"]
    list_select_related = ["user"]
    actions = ["resume"]

    @admin.action(description="Resume the selected workers")
    def resume(self, request, queryset):  # type: ignore[no-untyped-def]
        for profile in queryset:
            worker_resume(profile=profile)


@admin.register(GoldAnswer)
class GoldAnswerAdmin(admin.ModelAdmin):
    list_display = ["candidate", "category", "answer", "created_by", "created_at"]
    list_select_related = ["candidate", "category", "created_by"]
    raw_id_fields = ["candidate"]
    fields = ["candidate", "answer", "category", "created_by"]
    readonly_fields = ["category"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        """Through gold_mark, so the row gets its candidate's category and the candidate is
        decided; a row moved to another candidate leaves the old one's gold behind it."""
        if change and "candidate" in form.changed_data:
            GoldAnswer.objects.filter(pk=obj.pk).delete()
        marked = gold_mark(
            candidate=obj.candidate, answer=obj.answer, by=obj.created_by or request.user
        )
        obj.pk, obj.category_id = marked.pk, marked.category_id


@admin.register(MicroTask)
class MicroTaskAdmin(admin.ModelAdmin):
    list_display = ["uid", "worker", "kind", "category", "status", "issued_at", "expires_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["worker", "category"]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["worker", "kind", "candidate", "answer", "is_gold", "correct", "counted"]
    list_filter = ["kind", "answer", "is_gold", "counted"]
    list_select_related = ["worker", "candidate"]


@admin.register(Box)
class BoxAdmin(admin.ModelAdmin):
    list_display = ["uid", "candidate", "worker", "state", "yes_votes", "no_votes"]
    list_filter = ["state"]
    list_select_related = ["candidate", "worker"]


@admin.register(ObjectBox)
class ObjectBoxAdmin(admin.ModelAdmin):
    list_display = ["candidate", "x0", "y0", "x1", "y1", "score", "drawers"]
    list_select_related = ["candidate"]


@admin.register(ConsensusRun)
class ConsensusRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "trigger",
        "status",
        "started_at",
        "items",
        "votes",
        "workers",
        "iterations",
        "changed",
        "seconds",
    ]
    list_filter = ["status", "trigger"]


@admin.register(ConfidenceTable)
class ConfidenceTableAdmin(admin.ModelAdmin):
    list_display = ["category", "cap", "prior", "calibration_items", "fitted_at"]
    list_select_related = ["category"]
