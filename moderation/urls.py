from django.urls import path

from moderation import views

app_name = "moderation"

urlpatterns = [
    path("", views.uploads, name="uploads"),
    path("<uuid:upload_id>/", views.upload_detail, name="upload"),
    path("<uuid:upload_id>/image", views.upload_image, name="upload_image"),
    path("<uuid:upload_id>/frames/<int:index>", views.upload_frame, name="upload_frame"),
    path("<uuid:upload_id>/video", views.upload_video, name="upload_video"),
    path("<uuid:upload_id>/original", views.upload_original, name="upload_original"),
]
