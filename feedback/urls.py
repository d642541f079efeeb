from django.urls import path

from feedback import views

app_name = "feedback"

urlpatterns = [
    path("export/", views.export, name="export"),
    path("training/", views.training, name="training"),
    path("training/<int:run_id>/", views.training_run, name="training_run"),
    path("models/", views.models, name="models"),
    path("models/<int:version_id>/", views.model_action, name="model_action"),
    path("changes/", views.changes, name="changes"),
    path("changes/acknowledge/", views.changes_acknowledge_view, name="changes_acknowledge"),
]
