"""REST API v1: an API client registers the URL its webhooks go to, and reads its signing secret."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiClient
from integrations.services.webhooks import webhook_clear, webhook_secret_rotate, webhook_set


class WebhookOutput(serializers.Serializer):
    url = serializers.CharField(help_text="Where signed events are POSTed.")
    secret = serializers.CharField(help_text="HMAC-SHA256 key for the Vigil-Signature header (docs/webhooks.md).")


NOT_A_CLIENT = OpenApiResponse(
    inline_serializer(name="WebhookDetail", fields={"detail": serializers.CharField()}),
    description="Only API clients (token holders) have webhooks, or none is registered (404).",
)


def _client(request: Request) -> ApiClient:
    try:
        return request.user.api_client
    except ApiClient.DoesNotExist:
        raise PermissionDenied("Only API clients have webhooks.") from None


class WebhookApi(APIView):
    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=2000, help_text="https URL that accepts POSTs.")

    @extend_schema(operation_id="webhook_read", responses={200: WebhookOutput, 403: NOT_A_CLIENT, 404: NOT_A_CLIENT})
    def get(self, request: Request) -> Response:
        client = _client(request)
        if not client.webhook_url:
            raise NotFound("No webhook is registered.")
        return Response(WebhookOutput({"url": client.webhook_url, "secret": client.webhook_secret}).data)

    @extend_schema(
        operation_id="webhook_set",
        request=InputSerializer,
        responses={
            200: WebhookOutput,
            400: OpenApiResponse(description="A refused URL, with the reason."),
            403: NOT_A_CLIENT,
        },
        description="Register or change the callback URL. The secret is created on first registration.",
    )
    def put(self, request: Request) -> Response:
        client = _client(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            webhook_set(client=client, url=serializer.validated_data["url"])
        except DjangoValidationError as exc:
            raise ValidationError({"url": exc.messages}) from None
        return Response(WebhookOutput({"url": client.webhook_url, "secret": client.webhook_secret}).data)

    @extend_schema(operation_id="webhook_delete", responses={204: None, 403: NOT_A_CLIENT})
    def delete(self, request: Request) -> Response:
        webhook_clear(client=_client(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookSecretApi(APIView):
    @extend_schema(
        operation_id="webhook_secret_rotate",
        request=None,
        responses={200: WebhookOutput, 403: NOT_A_CLIENT, 404: NOT_A_CLIENT},
        description="Replace the signing secret; every attempt from now on is signed with the new one.",
    )
    def post(self, request: Request) -> Response:
        client = _client(request)
        if not client.webhook_url:
            raise NotFound("No webhook is registered.")
        secret = webhook_secret_rotate(client=client)
        return Response(WebhookOutput({"url": client.webhook_url, "secret": secret}).data)
