"""Forms of the curator's export and annotation-import pages."""

from __future__ import annotations

from typing import Any

from django import forms

from labeling.models import Category


class ExportForm(forms.Form):
    """What to export: a version (or a new snapshot), a format and its options."""

    version = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, label="Dataset version"
    )
    format = forms.ChoiceField(
        choices=[
            ("imagefolder", "ImageFolder (torchvision)"),
            ("coco", "COCO instances JSON"),
            ("voc", "Pascal VOC XML"),
            ("yolo", "YOLO"),
            ("csv", "CSV manifest"),
            ("jsonl", "JSON Lines manifest"),
            ("webdataset", "WebDataset tar shards"),
        ]
    )
    archive = forms.ChoiceField(choices=[("zip", "zip"), ("tar", "tar")])
    categories = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every class of the version.",
    )
    subtree = forms.ChoiceField(
        required=False, label="Only under", help_text="A category and its descendants."
    )
    min_confidence = forms.FloatField(
        min_value=0.0, max_value=1.0, initial=0.0, label="Minimum confidence"
    )
    splits = forms.MultipleChoiceField(
        choices=[("train", "train"), ("val", "val")],
        initial=["train", "val"],
        widget=forms.CheckboxSelectMultiple,
    )
    image_size = forms.ChoiceField(
        choices=[("original", "Original"), ("training", "Training size (shorter side 256)")],
        label="Images",
    )
    include_images = forms.BooleanField(
        required=False, initial=True, label="Include the image files"
    )
    folder_naming = forms.ChoiceField(
        choices=[("slug", "Slug"), ("wnid", "WordNet id (slug when none)")], label="Folder names"
    )

    def __init__(self, *args: Any, versions: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "A new snapshot of the accepted labels"), *versions]
        categories = list(Category.objects.order_by("name").values_list("slug", "name"))
        self.fields["categories"].choices = categories
        self.fields["subtree"].choices = [("", "Anywhere"), *categories]

    def options(self) -> dict[str, object]:
        data = self.cleaned_data
        return {
            "archive": data["archive"],
            "categories": data["categories"] or None,
            "subtree": data["subtree"] or None,
            "min_confidence": data["min_confidence"],
            "splits": data["splits"],
            "image_size": data["image_size"],
            "include_images": data["include_images"],
            "folder_naming": data["folder_naming"],
        }


class AnnotationImportForm(forms.Form):
    """An archive of images and annotations someone already made elsewhere."""

    archive = forms.FileField(help_text="A zip or tar holding the images and the annotation files.")
    format = forms.ChoiceField(
        choices=[
            ("coco", "COCO JSON"),
            ("voc", "Pascal VOC XML"),
            ("yolo", "YOLO (data.yaml, labels/)"),
            ("imagefolder", "ImageFolder (a folder per class)"),
            ("labelstudio", "Label Studio JSON export"),
        ],
        label="Annotation format",
    )
    prefill = forms.BooleanField(
        required=False,
        label="Let the crowd verify them",
        help_text="Open labels and proposed boxes, instead of accepted ones.",
    )
