"""Django admin for campaigns: read what happened; money and bindings are written by the
services only, so those are read-only here."""

from django.contrib import admin

from campaigns.models import Assignment, Campaign, ExternalWorker, LedgerEntry


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "marketplace", "state", "reward_cents", "bonus_rule"]
    list_filter = ["marketplace", "state"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["categories"]


@admin.register(ExternalWorker)
class ExternalWorkerAdmin(admin.ModelAdmin):
    list_display = ["external_id", "marketplace", "user", "created_at"]
    list_filter = ["marketplace"]
    search_fields = ["external_id", "user__username"]
    readonly_fields = ["marketplace", "external_id", "user", "created_at"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["external_id", "campaign", "worker", "state", "submitted_at"]
    list_filter = ["campaign", "state"]
    search_fields = ["external_id", "worker__external_id"]
    readonly_fields = [f.name for f in Assignment._meta.fields]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["assignment", "worker", "kind", "amount_cents", "created_at"]
    list_filter = ["campaign", "kind"]
    readonly_fields = [f.name for f in LedgerEntry._meta.fields]
