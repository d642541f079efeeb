from django.urls import path

from integrations import apis

urlpatterns = [
    path("", apis.WebhookApi.as_view(), name="api-webhook"),
    path("secret/", apis.WebhookSecretApi.as_view(), name="api-webhook-secret"),
]
