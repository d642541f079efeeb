"""REST API v1: submit an image, read its outcome."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import parsers, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from moderation.selectors import uploads_visible_to, uploads_with_hashes
from moderation.serializers import UploadOutput
from moderation.services.intake import UploadRejected, upload_create
from moderation.services.remote import upload_create_from_url


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus Django ValidationErrors from services as 400s."""
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError({"detail": exc.messages})
    return drf_exception_handler(exc, context)


@extend_schema_field({"type": "string", "description": 'A JSON object, e.g. {"user": 42}'})
class JSONObjectField(serializers.Field):
    """A JSON object given as a string (multipart form) or an object (JSON body)."""

    default_error_messages = {"invalid": 'Must be a JSON object, e.g. {{"user": 42}}.'}

    def to_internal_value(self, data: object) -> dict:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except json.JSONDecodeError:
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value: dict) -> dict:
        return value


# Error bodies, as DRF writes them: per-field messages for a 400, {"detail": ...} otherwise.
FIELD_ERRORS = OpenApiResponse(
    inline_serializer(
        name="FieldErrors",
        fields={
            "image": serializers.ListField(child=serializers.CharField(), required=False),
            "url": serializers.ListField(child=serializers.CharField(), required=False),
            "non_field_errors": serializers.ListField(child=serializers.CharField(), required=False),
        },
    ),
    description="Bad input: a list of messages per field (for example image, external_id, metadata).",
)


DETAIL = inline_serializer(name="Detail", fields={"detail": serializers.CharField()})


def _detail(description: str) -> OpenApiResponse:
    return OpenApiResponse(DETAIL, description)


UNAUTHORIZED = _detail("No token, or an invalid one.")
NOT_FOUND = _detail("No such upload, or not yours.")
PAGE = inline_serializer(
    name="UploadPage",
    fields={
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": UploadOutput(many=True),
    },
)


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown API paths answer JSON, like the rest of the API, not the HTML 404 page."""
    return JsonResponse({"detail": "Not found."}, status=404)


class UploadPagination(CursorPagination):
    """Newest first, 50 a page; ``?page_size=`` asks for up to ``max_page_size`` (README)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-created_at"

    def get_page_size(self, request) -> int:
        """A bad ``page_size`` is a 400 that says so, not quietly the default."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            asked = int(raw)
        except ValueError:
            asked = 0
        if asked < 1:
            raise ValidationError({"page_size": [f"A whole number from 1 to {self.max_page_size}."]})
        return min(asked, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:  # DRF's answer to a cursor it cannot decode
            raise ValidationError({"cursor": ["Invalid cursor: use a page's next or previous link."]}) from None


LIST_PARAMETERS = [
    OpenApiParameter(
        "page_size",
        int,
        description=f"Uploads per page: default {UploadPagination.page_size}, at most "
        f"{UploadPagination.max_page_size} (larger values are capped; anything but a positive whole number is a "
        "400). The `next` link keeps it.",
    ),
    OpenApiParameter("cursor", str, description="Opaque position from the previous page's `next` or `previous`."),
]


class UploadListCreateApi(APIView):
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, parsers.JSONParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "uploads"

    class FileInputSerializer(serializers.Serializer):
        image = serializers.FileField(
            allow_empty_file=True,
            help_text="JPEG, PNG, WebP or GIF image, or MP4, MOV, WebM or MKV video; see the limits.",
        )
        external_id = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
        metadata = JSONObjectField(required=False, default=dict)

    class UrlInputSerializer(serializers.Serializer):
        url = serializers.CharField(
            max_length=2000,
            help_text="An http(s) URL a worker fetches. Non-public addresses are refused unless allow-listed.",
        )
        external_id = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
        metadata = JSONObjectField(required=False, default=dict)

    def get_throttles(self):
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        operation_id="uploads_create",
        request={"multipart/form-data": FileInputSerializer, "application/json": UrlInputSerializer},
        responses={
            201: UploadOutput,
            202: UploadOutput,
            200: UploadOutput,
            400: FIELD_ERRORS,
            401: UNAUTHORIZED,
            415: _detail("Neither a multipart form nor JSON."),
            429: _detail("Too many uploads; retry after the Retry-After header's seconds."),
        },
        description=(
            "Submit an image as a file (multipart, 201) or by URL (JSON or form field `url`; 202: status "
            "`fetching` until a worker has fetched it, then as for a file, or `unavailable` with the reason). "
            "A repeated external_id returns the first upload with 200."
        ),
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not hasattr(data, "keys"):
            raise ValidationError({"non_field_errors": ["Send a JSON object or a multipart form."]})
        if "url" in data:
            if "image" in data or "image" in request.FILES:
                raise ValidationError({"url": ["Give either an image file or a url, not both."]})
            return self._create_from_url(request)
        if "image" not in request.FILES and "image" in data:
            raise ValidationError({"image": ["Send the image as a file in a multipart form, or give a url."]})
        serializer = self.FileInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        image = serializer.validated_data["image"]
        try:
            upload, created = upload_create(
                submitter=request.user,
                file=image,
                filename=getattr(image, "name", ""),
                external_id=serializer.validated_data["external_id"],
                metadata=serializer.validated_data["metadata"],
            )
        except UploadRejected as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        return Response(UploadOutput(upload).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _create_from_url(self, request: Request) -> Response:
        serializer = self.UrlInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            upload, created = upload_create_from_url(
                submitter=request.user,
                url=serializer.validated_data["url"],
                external_id=serializer.validated_data["external_id"],
                metadata=serializer.validated_data["metadata"],
            )
        except UploadRejected as exc:
            raise ValidationError({"url" if exc.field == "image" else exc.field: [str(exc)]}) from None
        return Response(UploadOutput(upload).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="uploads_list",
        parameters=LIST_PARAMETERS,
        responses={200: PAGE, 400: FIELD_ERRORS, 401: UNAUTHORIZED},
    )
    def get(self, request: Request) -> Response:
        uploads = uploads_with_hashes(uploads_visible_to(request.user).filter(submitter=request.user))
        paginator = UploadPagination()
        page = paginator.paginate_queryset(uploads, request, view=self)
        return paginator.get_paginated_response(UploadOutput(page, many=True).data)


class UploadDetailApi(APIView):
    @extend_schema(responses={200: UploadOutput, 401: UNAUTHORIZED, 404: NOT_FOUND})
    def get(self, request: Request, upload_id: str) -> Response:
        upload = get_object_or_404(uploads_with_hashes(uploads_visible_to(request.user)), pk=upload_id)
        return Response(UploadOutput(upload).data)
