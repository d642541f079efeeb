from django.urls import path

from reviews import views, views_decisions

app_name = "reviews"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.next_item, name="next"),
    path("grid/", views.grid, name="grid"),
    path("undo/", views.undo, name="undo"),
    path("preferences/", views.preferences, name="preferences"),
    path("stats/", views.stats, name="stats"),
    path("counts/", views.counts, name="counts"),
    path("r/<int:round_id>/", views.round_review, name="round"),
    path("r/<int:round_id>/decide", views.round_decide, name="decide"),
    path("r/<int:round_id>/decide-group", views.round_decide_group, name="decide_group"),
    path("r/<int:round_id>/skip", views.round_skip, name="skip"),
    path("r/<int:round_id>/lease", views.round_renew_lease, name="lease"),
    path("decisions/", views_decisions.decisions, name="decisions"),
    path("decisions/<int:decision_id>/change", views_decisions.decision_change_view, name="decision_change"),
    path("uploads/<uuid:upload_id>/reopen", views_decisions.upload_reopen_view, name="upload_reopen"),
]
