"""Server-rendered pages for submitting images and following their outcome."""

from __future__ import annotations

from typing import TypeVar

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.roles import Role, user_has_role
from moderation.forms import UploadForm
from moderation.imaging import DISPLAY_CONTENT_TYPE
from moderation.models import Upload
from moderation.selectors import scored_frames, uploads_visible_to, uploads_with_hashes, video_timeline
from moderation.serializers import UploadOutput
from moderation.services.display import DisplayUnavailable, display_ensure, frame_webp
from moderation.services.intake import UploadRejected, upload_create
from moderation.videos import CONTENT_TYPES as VIDEO_CONTENT_TYPES

# User images are served as inert data: never sniffed into HTML, never allowed to run anything.
IMAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
}


Response = TypeVar("Response", bound=HttpResponseBase)
RANGE_CAP = 8 * 1024 * 1024


def _inert(response: Response) -> Response:
    for header, value in IMAGE_HEADERS.items():
        response[header] = value
    return response


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if user_has_role(request.user, Role.MODERATOR):
        return redirect("reviews:queue")
    return redirect("moderation:uploads")


@login_required
@require_http_methods(["GET", "POST"])
def uploads(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        image = form.cleaned_data["image"]
        try:
            upload, _ = upload_create(submitter=request.user, file=image, filename=image.name)
        except UploadRejected as exc:
            form.add_error("image", str(exc))
        else:
            messages.success(request, "Uploaded. The classifier will score it in a moment.")
            return redirect("moderation:upload", upload_id=upload.pk)
    mine = uploads_visible_to(request.user).filter(submitter=request.user)
    page = Paginator(mine, 25).get_page(request.GET.get("page"))
    status = 400 if form.errors else 200
    return render(request, "moderation/uploads.html", {"form": form, "page": page}, status=status)


@login_required
@require_GET
def upload_detail(request: HttpRequest, upload_id: str) -> HttpResponse:
    upload = get_object_or_404(uploads_with_hashes(uploads_visible_to(request.user)), pk=upload_id)
    return render(
        request,
        "moderation/upload_detail.html",
        {
            "upload": upload,
            "data": UploadOutput(upload).data,
            "frames": scored_frames(upload),
            "video": video_timeline(upload),
            "pdq_min_quality": settings.VIGIL_PDQ_MIN_QUALITY,
        },
    )


@login_required
@require_GET
def upload_image(request: HttpRequest, upload_id: str) -> FileResponse:
    """The re-encoded, metadata-free display derivative, for those allowed to see the upload."""
    upload = get_object_or_404(uploads_visible_to(request.user).exclude(original=""), pk=upload_id)
    try:
        name = display_ensure(upload=upload)
    except DisplayUnavailable:
        raise Http404("This image cannot be shown.") from None
    return _inert(FileResponse(default_storage.open(name, "rb"), content_type=DISPLAY_CONTENT_TYPE))


@login_required
@require_GET
def upload_frame(request: HttpRequest, upload_id: str, index: int) -> HttpResponse:
    """One frame of an animated upload, re-encoded like the display derivative, for stepping
    through the frames; 404 for a frame the image does not have."""
    upload = get_object_or_404(uploads_visible_to(request.user).exclude(original=""), pk=upload_id)
    try:
        webp = frame_webp(upload=upload, index=index)
    except DisplayUnavailable:
        raise Http404("This frame cannot be shown.") from None
    return _inert(HttpResponse(webp, content_type=DISPLAY_CONTENT_TYPE))


@login_required
@require_GET
def upload_video(request: HttpRequest, upload_id: str) -> HttpResponse:
    """A video upload for the review page's player: inline, with its type, byte ranges (the
    player seeks with them) and the same inert headers as every image; 404 for other uploads."""
    upload = get_object_or_404(
        uploads_visible_to(request.user).exclude(original="").filter(kind=Upload.Kind.VIDEO), pk=upload_id
    )
    content_type = VIDEO_CONTENT_TYPES.get(upload.format, "application/octet-stream")
    size = upload.byte_size or default_storage.size(upload.original.name)
    byte_range = _byte_range(request.headers.get("Range", ""), size)
    if byte_range is None:
        response = FileResponse(default_storage.open(upload.original.name, "rb"), content_type=content_type)
    else:
        start, end = byte_range
        with default_storage.open(upload.original.name, "rb") as source:
            source.seek(start)
            body = source.read(end - start + 1)
        response = HttpResponse(body, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return _inert(response)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` as inclusive offsets within ``size``, capped at
    8 MiB a request; None for anything else (the whole file is sent)."""
    if not header.startswith("bytes=") or "," in header or size <= 0:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        if first:
            start = int(first)
            end = int(last) if last else size - 1
        else:
            start, end = max(0, size - int(last)), size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1, start + RANGE_CAP - 1)


@login_required
@require_GET
def upload_original(request: HttpRequest, upload_id: str) -> FileResponse:
    """The original file, as a download only (never rendered inline)."""
    upload = get_object_or_404(uploads_visible_to(request.user).exclude(original=""), pk=upload_id)
    return _inert(
        FileResponse(
            default_storage.open(upload.original.name, "rb"),
            as_attachment=True,
            filename=f"{upload.pk}.{upload.original.name.rsplit('.', 1)[-1]}",
            content_type="application/octet-stream",
        )
    )
