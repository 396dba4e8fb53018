"""Serving stored image files, by opaque id only, to signed-in users and to signed URLs
(labeling.api.image_urls)."""

from __future__ import annotations

import hashlib
import hmac
import io

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET
from PIL import Image as PILImage

from labeling.api.image_urls import image_viewer
from labeling.models import Image, TaskItem

VIEWER_PATCH = 2
"""Side of the square, in pixels, that a worker's copy of an image changes."""
VIEWER_DELTA = 12
"""How far (0-255) each channel of that square moves: past JPEG's quantisation at the stored
quality, out of sight at a few pixels."""

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
    _lock_down(response, cache)
    return response


def _lock_down(response: HttpResponseBase, cache: str) -> None:
    """Give ``response`` the caching, no-sniffing and sandbox headers of every image."""
    response["Cache-Control"] = cache
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = "inline"


@require_GET
@image_viewer
def task_item_image(request: HttpRequest, uid: str) -> HttpResponse:
    """The training-size copy of one item of the worker's own task. The URL names only the
    item's random id, so gold and other items look alike and repeat images can't be tracked."""
    item = get_object_or_404(
        TaskItem.objects.select_related("candidate__image"), uid=uid, task__worker=request.user
    )
    image = item.candidate.image
    with default_storage.open(image.train_copy.name, "rb") as handle:
        data = _viewer_copy(handle.read(), f"{request.user.pk}:{image.uid}")
    response = HttpResponse(data, content_type="image/jpeg")
    _lock_down(response, "private, max-age=600")
    return response


def _viewer_copy(data: bytes, viewer: str) -> bytes:
    """The JPEG ``data`` re-encoded with a small square nudged at a place keyed by ``viewer``
    (worker and image): every worker gets other bytes and pixels (the same ones each time), so
    colluders can't match known control items by a file or pixel hash. About 0.2 ms per
    training copy (bench/control_detection.py)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), viewer.encode(), hashlib.sha256).digest()
    picture = PILImage.open(io.BytesIO(data))
    if picture.mode not in ("L", "RGB"):
        picture = picture.convert("RGB")
    width, height = picture.size
    x0 = int.from_bytes(digest[:4]) % max(1, width - VIEWER_PATCH)
    y0 = int.from_bytes(digest[4:8]) % max(1, height - VIEWER_PATCH)
    step = VIEWER_DELTA if digest[8] % 2 else -VIEWER_DELTA
    for x in range(x0, min(width, x0 + VIEWER_PATCH)):
        for y in range(y0, min(height, y0 + VIEWER_PATCH)):
            pixel = picture.getpixel((x, y))
            channels = pixel if isinstance(pixel, tuple) else (pixel,)
            # move each channel by the step, or the other way where that would leave 0-255
            moved = tuple(c + step if 0 <= c + step <= 255 else c - step for c in channels)
            picture.putpixel((x, y), moved if isinstance(pixel, tuple) else moved[0])
    out = io.BytesIO()
    if picture.format == "JPEG":  # the stored copy's own tables: the least extra loss
        picture.save(out, "JPEG", quality="keep", subsampling="keep")
    else:
        picture.save(out, "JPEG", quality=95)
    return out.getvalue()
