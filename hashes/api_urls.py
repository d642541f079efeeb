from django.urls import path

from hashes import apis

urlpatterns = [
    path("match", apis.HashMatchApi.as_view(), name="api-hash-match"),
]
