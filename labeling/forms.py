"""HTML forms: shape and validate browser input; the views hand it to labeling.services."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from labeling.models import Category
from labeling.services.accounts import validate_username
from labeling.services.category_imports import MAX_BYTES as CATEGORY_LIST_MAX_BYTES

UPLOAD_ACCEPT = "image/*,.zip,.tar,.gz,.tgz,application/zip,application/x-tar,application/gzip"


def category_tree(categories: list[Category]) -> Iterator[tuple[Category, int]]:
    """(category, depth) pairs, depth-first with siblings by name; orphans count as roots."""
    known = {category.pk for category in categories}
    children: dict[int | None, list[Category]] = defaultdict(list)
    for category in categories:
        parent = category.parent_id if category.parent_id in known else None
        children[parent].append(category)
    for siblings in children.values():
        siblings.sort(key=lambda category: category.name.lower())
    stack = [(category, 0) for category in reversed(children[None])]
    seen: set[int] = set()
    while stack:
        category, depth = stack.pop()
        if category.pk in seen:
            continue
        seen.add(category.pk)
        yield category, depth
        stack.extend((child, depth + 1) for child in reversed(children[category.pk]))


class CategoryChoiceField(forms.ModelChoiceField):
    """Categories by slug, shown as an indented tree (one query); archived ones are left out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            queryset=Category.objects.active().only("id", "name", "slug", "parent_id"),
            to_field_name="slug",
            empty_label="Choose a category…",
            **kwargs,
        )

    def tree_choices(self) -> list[tuple[str, str]]:
        choices = [("", str(self.empty_label))]
        for category, depth in category_tree(list(self.queryset)):
            choices.append(
                (category.slug, "\u2003" * depth + ("\u2013 " if depth else "") + category.name)
            )
        return choices


class CategoryForm(forms.Form):
    """A form whose first field picks a category from the tree, read when the form is built."""

    category = CategoryChoiceField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        field.widget.choices = field.tree_choices()


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field; each may be empty (the ingest reports it as rejected)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": UPLOAD_ACCEPT}))
        super().__init__(allow_empty_file=True, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single_clean = super().clean
        if isinstance(data, list | tuple):
            if not data and self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return [single_clean(item, initial) for item in data]
        return [single_clean(data, initial)]


class UploadForm(CategoryForm):
    files = MultipleFileField(
        label="Images or archives",
        help_text="JPEG, PNG, WebP, GIF, BMP or TIFF images, and .zip, .tar or .tar.gz archives.",
    )


class ScrapeForm(CategoryForm):
    urls = forms.CharField(
        label="Image URLs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "autocomplete": "off"}),
        help_text="One http(s) address per line; blank lines and lines starting with # are "
        "skipped.",
    )
    page_url = forms.URLField(
        label="…or a web page",
        required=False,
        max_length=2000,
        assume_scheme="https",
        help_text="Every image the page shows is fetched.",
    )

    def clean_urls(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["urls"].splitlines()]
        urls = [line for line in lines if line and not line.startswith("#")]
        check = URLValidator(schemes=["http", "https"])
        bad = []
        for url in urls:
            try:
                check(url)
            except ValidationError:
                bad.append(url)
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise ValidationError(f"These lines are not http(s) addresses: {shown}.")
        limit = settings.CROWDNET_FETCH_MAX_URLS
        if len(urls) > limit:
            raise ValidationError(f"{len(urls):,} addresses given; at most {limit:,} per job.")
        return urls

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if bool(cleaned.get("urls")) == bool(cleaned.get("page_url")):
            raise ValidationError("Give either a list of image URLs or one page URL, not both.")
        return cleaned


def username_field() -> forms.CharField:
    return forms.CharField(
        max_length=150,
        validators=[validate_username],
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}
        ),
        help_text="Letters, digits and @ . + - _ only.",
    )


def password_field(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


STRENGTH_HELP = "At least 8 characters, not all digits, not a common password."


class ServiceErrorsMixin:
    """Puts a service's ValidationError on the form: by field when it names one ("password"
    meaning this form's password field), else on the password field."""

    unnamed_errors_field = "password"

    def add_service_error(self, error: ValidationError) -> None:
        form: Any = self
        if not hasattr(error, "error_dict"):
            form.add_error(self.unnamed_errors_field, error.messages)
            return
        for field, messages in error.message_dict.items():
            target = self.unnamed_errors_field if field == "password" else field
            form.add_error(target if target in form.fields else None, messages)


class NewAccountForm(ServiceErrorsMixin, forms.Form):
    """Someone picks their own username and types a password twice."""

    unnamed_errors_field = "password1"

    username = username_field()
    password1 = password_field("Password", STRENGTH_HELP)
    password2 = password_field("Password again")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ; type the same one twice.")
        return cleaned


class WorkerCreateForm(ServiceErrorsMixin, forms.Form):
    """A curator sets a worker's username and first password."""

    username = username_field()
    password = password_field("Password", STRENGTH_HELP)


class InvitationForm(forms.Form):
    note = forms.CharField(
        max_length=200,
        required=False,
        label="Who is it for?",
        help_text="A note for yourself, e.g. a name; the invitee never sees it.",
    )


class CategoryEditForm(forms.ModelForm):
    """A category's own fields; the parent is picked from the tree (never itself or below it).

    Validation is the model's (WordNet id shape, lengths, unique slug and id); the view hands
    the cleaned values to labeling.services.categories."""

    parent = forms.ModelChoiceField(
        queryset=Category.objects.none(), to_field_name="slug", required=False
    )

    class Meta:
        model = Category
        fields = ["name", "slug", "wnid", "definition", "parent", "target_images"]
        labels = {"wnid": "WordNet id", "target_images": "Target images"}
        help_texts = {
            "slug": "Letters, digits and hyphens; used in addresses and exports.",
            "definition": "Shown to workers with every question about it.",
        }
        widgets = {"definition": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        categories = list(Category.objects.only("id", "name", "slug", "parent_id"))
        below = _subtree_ids(categories, self.instance.pk) if self.instance.pk else set()
        allowed = [c for c in categories if c.pk not in below]
        field = self.fields["parent"]
        field.queryset = Category.objects.exclude(pk__in=below)
        field.choices = [("", "None: a top-level category")] + [
            (c.slug, "\u2003" * depth + ("\u2013 " if depth else "") + c.name)
            for c, depth in category_tree(allowed)
        ]
        if self.instance.pk and self.instance.parent_id:
            self.initial["parent"] = self.instance.parent.slug

    def clean_wnid(self) -> str | None:
        return self.cleaned_data.get("wnid") or None


def _subtree_ids(categories: list[Category], root: int) -> set[int]:
    """The ids of `root` and every category below it."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for category in categories:
        children[category.parent_id].append(category.pk)
    found, stack = set(), [root]
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(children[node])
    return found


class CategoryImportForm(forms.Form):
    """A CSV or JSON list of categories (see labeling.services.category_imports)."""

    file = forms.FileField(
        label="CSV or JSON file",
        help_text="CSV with a header row: wnid,name,definition,parent_wnid,target_images "
        "(only name is required). Or a JSON list of objects with the same keys.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.json,text/csv,application/json"}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > CATEGORY_LIST_MAX_BYTES:
            raise ValidationError(
                f"The file is {upload.size:,} bytes; at most {CATEGORY_LIST_MAX_BYTES:,}: split it."
            )
        return upload
