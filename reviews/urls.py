from django.urls import path

from reviews import views

app_name = "reviews"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.next_item, name="next"),
    path("<uuid:upload_id>/", views.item, name="item"),
]
