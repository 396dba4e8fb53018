"""HTML routes of the export and annotation-import pages."""

from django.urls import path

from datasets import views

urlpatterns = [
    path("curate/exports/", views.curate_exports, name="curate-exports"),
    path(
        "curate/exports/import/",
        views.curate_annotations_import,
        name="curate-annotations-import",
    ),
]
