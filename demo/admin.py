"""Django admin for the demo's truth table."""

from django.contrib import admin

from demo.models import DemoTruth


@admin.register(DemoTruth)
class DemoTruthAdmin(admin.ModelAdmin):
    list_display = ["candidate", "is_positive", "true_label"]
