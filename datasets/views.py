"""HTML views for datasets out and in: export jobs (ask, follow, cancel, download) and
imports of annotations made elsewhere."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from datasets.forms import AnnotationImportForm, ExportForm
from datasets.models import DatasetExport, DatasetVersion
from datasets.services.annotation_imports import annotations_import
from datasets.services.exports import ExportRequestError, export_cancel, export_create
from labeling.views import bad_request, curator_required, posted_uuid


@curator_required
@require_http_methods(["GET", "POST"])
def curate_exports(request: HttpRequest) -> HttpResponse:
    """Ask for an export, follow the jobs (exports.js polls them), download or cancel them."""
    form = ExportForm(versions=_version_choices())
    if request.POST.get("action") == "cancel":
        export_uid = posted_uuid(request, "export")
        if export_uid is None:
            return bad_request(request, "The export to cancel must be given by its id (a UUID).")
        export = get_object_or_404(_own_exports(request), uid=export_uid)
        export = export_cancel(export=export)
        if export.status == DatasetExport.Status.CANCELLED:
            messages.success(request, "The export is cancelled.")
        elif export.cancel_requested and export.status == DatasetExport.Status.RUNNING:
            messages.success(request, "The export stops at its next image.")
        else:
            messages.error(request, f"The export is {export.status}; there is nothing to cancel.")
        return redirect("curate-exports")
    if request.method == "POST":
        form = ExportForm(request.POST, versions=_version_choices())
        if form.is_valid():
            number = form.cleaned_data["version"]
            try:
                export = export_create(
                    by=request.user,
                    kind=form.cleaned_data["format"],
                    options=form.options(),
                    version=None
                    if number is None
                    else get_object_or_404(DatasetVersion, number=number),
                )
            except ExportRequestError as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request,
                    f"Exporting {export.images_total} images of version "
                    f"{export.version.number} as {export.format}.",
                )
                return redirect("curate-exports")
    return _exports_page(request, form, AnnotationImportForm())


@curator_required
@require_http_methods(["POST"])
def curate_annotations_import(request: HttpRequest) -> HttpResponse:
    """Import an archive of annotations made elsewhere; every bad record is listed."""
    import_form = AnnotationImportForm(request.POST, request.FILES)
    report = None
    if import_form.is_valid():
        report = annotations_import(
            source=import_form.cleaned_data["archive"].file,
            kind=import_form.cleaned_data["format"],
            by=request.user,
            prefill=import_form.cleaned_data["prefill"],
        )
        if report.ok:
            messages.success(
                request,
                f"Imported {report.images} images, {report.labels} labels and "
                f"{report.boxes} boxes.",
            )
            return redirect("curate-exports")
    form = ExportForm(versions=_version_choices())
    return _exports_page(request, form, import_form, report, status=400)


def _version_choices() -> list[tuple[int, str]]:
    return [
        (v.number, f"v{v.number}: {v.images} images, {len(v.classes)} classes")
        for v in DatasetVersion.objects.order_by("-number")[:50]
    ]


def _exports_page(
    request: HttpRequest,
    form: ExportForm,
    import_form: AnnotationImportForm,
    import_report: object = None,
    status: int = 200,
) -> HttpResponse:
    page = Paginator(_own_exports(request), 25).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "retention_hours": settings.CROWDNET_EXPORT_RETENTION_HOURS,
        "import_form": import_form,
        "import_report": import_report,
    }
    return render(request, "labeling/curate_exports.html", context, status=status)


def _own_exports(request: HttpRequest) -> QuerySet[DatasetExport]:
    exports = DatasetExport.objects.select_related("version", "requested_by")
    return exports if request.user.is_staff else exports.filter(requested_by=request.user)
