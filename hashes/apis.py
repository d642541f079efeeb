"""REST API v1: is this picture, or this PDQ hash, on one of the hash lists?"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import parsers, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.models import ApiClient
from accounts.roles import Role, user_has_role
from hashes.pdq import MAX_INDEXED_DISTANCE, InvalidPdq, pdq_parse
from hashes.selectors import list_matches
from hashes.services.hashing import image_pdq
from moderation.services.intake import UploadRejected


class CanMatchHashes(BasePermission):
    """API clients (platforms) and the team (moderators, admins). Not every signed-in uploader:
    whether a picture is on a list, asked again and again, tells someone how to change it until it
    no longer matches."""

    message = "Only API clients, moderators and admins may match hashes."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user_has_role(user, Role.MODERATOR):
            return True
        return ApiClient.objects.filter(user=user).exists()


class MatchOutput(serializers.Serializer):
    list = serializers.CharField(source="row.hash_list.name", help_text="The hash list's name.")
    list_id = serializers.IntegerField(source="row.hash_list.id")
    action = serializers.CharField(source="row.hash_list.action", help_text="reject, queue or tag.")
    category = serializers.CharField(source="row.hash_list.category", help_text="The list's harmful category.")
    labels = serializers.CharField(source="row.labels", help_text="The entry's labels, separated by spaces.")
    source_id = serializers.CharField(source="row.source_id", help_text="The entry's id where it came from.")
    pdq = serializers.CharField(source="row.pdq", help_text="The list's hash that matched.")
    distance = serializers.IntegerField(help_text="Bits that differ (0–31).")


class HashMatchOutput(serializers.Serializer):
    pdq = serializers.CharField(help_text="The hash matched: the one given, or the image's (64 hex digits).")
    quality = serializers.IntegerField(allow_null=True, help_text="The image's PDQ quality (0–100); null for a hash.")
    low_quality = serializers.BooleanField(
        required=False,
        help_text="Only when true: the image's quality is below VIGIL_PDQ_MIN_QUALITY (a flat or nearly blank "
        "picture), so it is not matched, as routing does not match it.",
    )
    matches = MatchOutput(many=True, help_text="Entries of enabled lists, nearest first.")


HASH_MATCH_ERRORS = OpenApiResponse(
    inline_serializer(
        name="HashMatchErrors",
        fields={
            "image": serializers.ListField(child=serializers.CharField(), required=False),
            "pdq": serializers.ListField(child=serializers.CharField(), required=False),
            "max_distance": serializers.ListField(child=serializers.CharField(), required=False),
            "non_field_errors": serializers.ListField(child=serializers.CharField(), required=False),
        },
    ),
    description="Bad input: a list of messages per field.",
)
DETAIL = inline_serializer(name="HashMatchDetail", fields={"detail": serializers.CharField()})


class HashMatchApi(APIView):
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, parsers.JSONParser]
    permission_classes = [IsAuthenticated, CanMatchHashes]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "hash_match"

    class HashMatchInputSerializer(serializers.Serializer):
        image = serializers.FileField(
            required=False, allow_empty_file=True, help_text="A JPEG, PNG, WebP or GIF image (its first frame)."
        )
        pdq = serializers.CharField(required=False, help_text="A PDQ hash: 64 hex digits.")
        max_distance = serializers.IntegerField(
            required=False,
            min_value=0,
            max_value=MAX_INDEXED_DISTANCE,
            help_text="Bits a match may differ by (0–31); default VIGIL_PDQ_DISTANCE.",
        )

        def validate_pdq(self, value: str) -> str:
            try:
                return pdq_parse(value)
            except InvalidPdq as exc:
                raise serializers.ValidationError(f"Not a PDQ hash: {exc}.") from None

    @extend_schema(
        operation_id="hashes_match",
        request={"multipart/form-data": HashMatchInputSerializer, "application/json": HashMatchInputSerializer},
        responses={
            200: HashMatchOutput,
            400: HASH_MATCH_ERRORS,
            401: OpenApiResponse(DETAIL, "No token, or an invalid one."),
            403: OpenApiResponse(DETAIL, "Signed in, but neither an API client nor a moderator."),
            415: OpenApiResponse(DETAIL, "Neither a multipart form nor JSON."),
            429: OpenApiResponse(DETAIL, "Too many requests; retry after the Retry-After header's seconds."),
        },
        description=(
            "Match an image (multipart field `image`) or a PDQ hash (`pdq`), not both, against the enabled hash "
            "lists. Nothing is stored."
        ),
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not hasattr(data, "keys"):
            raise ValidationError({"non_field_errors": ["Send a JSON object or a multipart form."]})
        has_image = "image" in request.FILES or "image" in data
        if has_image and "pdq" in data:
            raise ValidationError({"non_field_errors": ["Give either an image or a pdq hash, not both."]})
        if not has_image and "pdq" not in data:
            raise ValidationError({"non_field_errors": ["Give an image (a multipart file) or a pdq hash."]})
        if "image" in data and "image" not in request.FILES:
            raise ValidationError({"image": ["Send the image as a file in a multipart form."]})
        serializer = self.HashMatchInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        if not {"pdq", "image"} & serializer.validated_data.keys():  # a blank form field is dropped, not refused
            field = "pdq" if "pdq" in data else "image"
            raise ValidationError({field: ["This field may not be blank."]})
        max_distance = serializer.validated_data.get("max_distance", settings.VIGIL_PDQ_DISTANCE)
        if "pdq" in serializer.validated_data:
            pdq, quality = serializer.validated_data["pdq"], None
        else:
            try:
                computed = image_pdq(file=serializer.validated_data["image"])
            except UploadRejected as exc:
                raise ValidationError({"image": [str(exc)]}) from None
            pdq, quality = computed.hex, computed.quality
        body = {"pdq": pdq, "quality": quality, "matches": []}
        if quality is not None and quality < settings.VIGIL_PDQ_MIN_QUALITY:
            body["low_quality"] = True
        else:
            body["matches"] = list_matches(pdq, max_distance)
        return Response(HashMatchOutput(body).data)
