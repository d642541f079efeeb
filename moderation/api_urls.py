from django.urls import path

from moderation import apis

urlpatterns = [
    path("uploads/", apis.UploadListCreateApi.as_view(), name="api-uploads"),
    path("uploads/<uuid:upload_id>/", apis.UploadDetailApi.as_view(), name="api-upload"),
]
