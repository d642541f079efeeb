from django.urls import path

from metrics import views

app_name = "metrics"

urlpatterns = [
    path("thresholds/", views.thresholds, name="thresholds"),
    path("thresholds/drafts/<int:draft_id>/dismiss/", views.draft_dismiss, name="draft_dismiss"),
    path("dashboard/", views.dashboard, name="dashboard"),
]
