from django.urls import path

from metrics import views

app_name = "metrics"

urlpatterns = [
    path("thresholds/", views.thresholds, name="thresholds"),
    path("dashboard/", views.dashboard, name="dashboard"),
]
