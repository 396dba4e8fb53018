"""Curators' pages for the category tree: list, create, edit, archive or restore, and import a
list of categories. Each validates a form, calls one service in labeling.services, renders."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling.forms import CategoryEditForm, CategoryImportForm, category_tree
from labeling.models import Candidate, Category
from labeling.services.categories import (
    CategoryHasChildren,
    category_archive,
    category_create,
    category_delete,
    category_restore,
    category_update,
)
from labeling.services.category_imports import categories_import
from labeling.views import curator_required

EXAMPLES_SHOWN = 6
"""Example images on a category's page: the accepted ones workers see beside each question."""


def _rows(categories: list[Category]) -> list[dict[str, Any]]:
    return [
        {"category": category, "depth": depth, "indent": "\u2003" * depth}
        for category, depth in category_tree(categories)
    ]


@curator_required
@require_GET
def curate_categories(request: HttpRequest) -> HttpResponse:
    """The category tree with each one's candidates, and the archived ones apart."""
    categories = list(
        Category.objects.annotate(
            candidate_count=Count("candidates"),
            accepted_count=Count("candidates", filter=Q(candidates__state="accepted")),
        )
    )
    active = [c for c in categories if c.archived_at is None]
    archived = sorted((c for c in categories if c.archived_at), key=lambda c: c.name.lower())
    context = {"rows": _rows(active), "archived": archived}
    return render(request, "labeling/curate_categories.html", context)


def _save(form: CategoryEditForm, category: Category | None) -> Category | None:
    """Hand the form's values to the service; its refusals become form errors."""
    fields = {name: form.cleaned_data[name] for name in form.Meta.fields}
    try:
        if category is None:
            return category_create(**fields)
        return category_update(category=category, **fields)
    except ValidationError as error:
        for name, problems in error.message_dict.items():
            form.add_error(name if name in form.fields else None, problems)
    return None


@curator_required
@require_http_methods(["GET", "POST"])
def curate_category_new(request: HttpRequest) -> HttpResponse:
    """Create a category."""
    form = CategoryEditForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        category = _save(form, None)
        if category is not None:
            messages.success(request, f"Category {category.name} created.")
            return redirect("curate-category", slug=category.slug)
    return render(request, "labeling/curate_category.html", {"form": form, "category": None})


@curator_required
@require_http_methods(["GET", "POST"])
def curate_category(request: HttpRequest, slug: str) -> HttpResponse:
    """Edit a category; its example images, and the buttons to archive, restore or delete."""
    category = get_object_or_404(Category.objects.select_related("parent"), slug=slug)
    # the form edits its own copy: the page keeps showing what is stored
    form = CategoryEditForm(request.POST or None, instance=Category.objects.get(pk=category.pk))
    if request.method == "POST" and form.is_valid():
        saved = _save(form, category)
        if saved is not None:
            messages.success(request, f"Category {saved.name} saved.")
            return redirect("curate-category", slug=saved.slug)
    examples = (
        Candidate.objects.filter(category=category, state="accepted", gold__isnull=True)
        .select_related("image")
        .order_by("-confidence", "id")[:EXAMPLES_SHOWN]
    )
    context = {"form": form, "category": category, "examples": examples}
    return render(request, "labeling/curate_category.html", context)


@curator_required
@require_POST
def curate_category_state(request: HttpRequest, slug: str) -> HttpResponse:
    """Archive, restore or delete a category (delete archives one that holds data)."""
    category = get_object_or_404(Category, slug=slug)
    action = request.POST.get("action")
    if action == "archive":
        category_archive(category=category)
        messages.success(request, f"{category.name} is archived: the crowd no longer sees it.")
    elif action == "restore":
        category_restore(category=category)
        messages.success(request, f"{category.name} is back in use.")
    elif action == "delete":
        try:
            outcome = category_delete(category=category)
        except CategoryHasChildren as error:
            messages.error(request, str(error))
            return redirect("curate-category", slug=slug)
        if outcome == "deleted":
            messages.success(request, f"{category.name} is deleted.")
        else:
            messages.success(
                request, f"{category.name} holds the crowd's work, so it was archived instead."
            )
    else:
        messages.error(request, "Choose archive, restore or delete.")
        return redirect("curate-category", slug=slug)
    return redirect(reverse("curate-categories"))


@curator_required
@require_http_methods(["GET", "POST"])
def curate_categories_import(request: HttpRequest) -> HttpResponse:
    """Import a CSV or JSON list of categories: all rows, or none and every problem listed."""
    form = CategoryImportForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        report = categories_import(data=upload.read(), name=upload.name or "")
        if report.ok:
            messages.success(request, f"{upload.name}: {report.summary()}.")
            return redirect("curate-categories")
        context["errors"] = report.errors
    status = 400 if request.method == "POST" else 200
    return render(request, "labeling/curate_categories_import.html", context, status=status)
