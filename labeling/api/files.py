"""Serving stored image files, by opaque id only, to signed-in users and to signed URLs
(labeling.api.image_urls)."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from labeling.api.image_urls import image_viewer
from labeling.models import Image, TaskItem

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


@require_GET
@image_viewer
def image_file(request: HttpRequest, uid: str, variant: str) -> FileResponse:
    """The original (curators only), thumbnail or training copy of one image.

    The URL carries only the image's random uid: no category, state or anything that tells
    a gold item from another. Responses forbid sniffing and sandbox the document."""
    image = get_object_or_404(Image, uid=uid)
    if variant == "thumb":
        name, content_type = image.thumbnail.name, "image/jpeg"
    elif variant == "train":
        name, content_type = image.train_copy.name, "image/jpeg"
    elif variant == "original" and request.user.is_curator:
        name, content_type = image.file.name, CONTENT_TYPES[image.format]
    else:
        raise Http404("No such image.")
    return _serve(name, content_type)


def _serve(name: str, content_type: str, cache: str = "private, max-age=86400") -> FileResponse:
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = cache
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = "inline"
    return response


@require_GET
@image_viewer
def task_item_image(request: HttpRequest, uid: str) -> FileResponse:
    """The training-size copy of one item of the worker's own task. The URL names only the
    item's random id, so gold and other items look alike and repeat images can't be tracked."""
    item = get_object_or_404(
        TaskItem.objects.select_related("candidate__image"), uid=uid, task__worker=request.user
    )
    return _serve(item.candidate.image.train_copy.name, "image/jpeg", cache="private, max-age=600")
