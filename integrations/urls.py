from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("webhooks/", views.deliveries, name="deliveries"),
    path("webhooks/<uuid:delivery_id>/redeliver/", views.redeliver, name="redeliver"),
]
