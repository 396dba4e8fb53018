"""API routes of exports and annotation imports, mounted under /api/ (the paths they always had)."""

from django.urls import path

from datasets import api

urlpatterns = [
    path("imports/annotations/", api.AnnotationImportView.as_view(), name="api-annotation-import"),
    path("exports/", api.ExportListCreateView.as_view(), name="api-exports"),
    path("exports/direct/", api.ExportDirectView.as_view(), name="api-export-direct"),
    path("exports/<uuid:uid>/", api.ExportDetailView.as_view(), name="api-export"),
    path("exports/<uuid:uid>/cancel/", api.ExportCancelView.as_view(), name="api-export-cancel"),
    path(
        "exports/<uuid:uid>/download/",
        api.ExportDownloadView.as_view(),
        name="api-export-download",
    ),
]
