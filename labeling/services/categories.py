"""Named writes on the category tree: create, update, archive, restore and delete.

A category that holds crowd data (candidates, and through them labels, votes, control items
and boxes; import jobs; micro-tasks) is never deleted: deleting it archives it, which hides it
from the crowd and from new imports and keeps every row. Only a category with no data at all
really goes, and never one with subcategories.
"""

from __future__ import annotations

from typing import Any, Literal

from django.db import transaction
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from labeling.models import Candidate, Category, ImportJob, MicroTask

CATEGORY_FIELDS = ("name", "slug", "wnid", "definition", "parent", "target_images")


class CategoryHasChildren(Exception):
    """The category is a parent: its subcategories must be moved or removed first."""


def _checked_save(category: Category) -> Category:
    """Run the model's validators (wnid shape, lengths, uniqueness) and the tree check (its
    clean()), then save; raises ValidationError with per-field messages and writes nothing on
    failure."""
    category.wnid = category.wnid or None
    category.full_clean()
    category.save()
    return category


def category_create(**fields: Any) -> Category:
    """Create one category from CATEGORY_FIELDS; raises ValidationError on bad input."""
    return _checked_save(Category(**{k: v for k, v in fields.items() if k in CATEGORY_FIELDS}))


def category_update(*, category: Category, **fields: Any) -> Category:
    """Change the given CATEGORY_FIELDS of ``category``; raises ValidationError on bad input."""
    with transaction.atomic():
        locked = Category.objects.select_for_update().get(pk=category.pk)
        for name, value in fields.items():
            if name in CATEGORY_FIELDS:
                setattr(locked, name, value)
        return _checked_save(locked)


def category_archive(*, category: Category) -> Category:
    """Archive ``category`` (writes archived_at only): the crowd gets no task about it and new
    imports can't choose it; its data stays. Archiving an archived category changes nothing."""
    Category.objects.filter(pk=category.pk, archived_at__isnull=True).update(
        archived_at=timezone.now()
    )
    category.refresh_from_db(fields=["archived_at"])
    return category


def category_restore(*, category: Category) -> Category:
    """Bring an archived category back to the crowd and the import pickers."""
    Category.objects.filter(pk=category.pk).update(archived_at=None)
    category.refresh_from_db(fields=["archived_at"])
    return category


def category_has_data(category: Category) -> bool:
    """True when anything of the crowd's work or the imports' history refers to it."""
    return (
        Candidate.objects.filter(category=category).exists()
        or ImportJob.objects.filter(category=category).exists()
        or MicroTask.objects.filter(category=category).exists()
    )


def _children_message(category: Category) -> str | None:
    names = list(category.children.order_by("name").values_list("name", flat=True)[:6])
    if not names:
        return None
    count = category.children.count()
    shown = ", ".join(names[:5]) + (", …" if count > 5 else "")
    return (
        f"{category.name} has {count} subcategor{'y' if count == 1 else 'ies'} ({shown}): "
        "move them to another parent or delete them first."
    )


def category_delete(*, category: Category) -> Literal["deleted", "archived"]:
    """Delete an empty category, or archive one that holds data (nothing of it is removed).

    Raises CategoryHasChildren (nothing changed) when it is a parent."""
    with transaction.atomic():
        locked = Category.objects.select_for_update().get(pk=category.pk)
        message = _children_message(locked)
        if message:
            raise CategoryHasChildren(message)
        if not category_has_data(locked):
            try:
                with transaction.atomic():
                    locked.delete()
                return "deleted"
            except ProtectedError:
                pass  # data arrived meanwhile: archive it like any other
        category_archive(category=category)
        return "archived"
