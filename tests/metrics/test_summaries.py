from datetime import timedelta

import pytest

from metrics.models import WindowSummary
from metrics.selectors.traffic import totals
from metrics.selectors.windows import window_named
from metrics.services.rollups import rollups_refresh
from metrics.services.summaries import summaries_refresh, window_summary
from tests.metrics.helpers import active, labelled


@pytest.mark.django_db
def test_a_summary_is_reused_until_the_rollups_change(moderator):
    labelled(moderator, 0.9, "harmful")
    rollups_refresh()
    first = window_summary(model_version=active(), window=window_named("7d"))
    again = window_summary(model_version=active(), window=window_named("7d"))
    assert again.computed_at == first.computed_at and totals(again.cells)["scored"] == 1
    labelled(moderator, 0.2, "safe")
    rollups_refresh()
    fresh = window_summary(model_version=active(), window=window_named("7d"))
    assert fresh.computed_at > first.computed_at and totals(fresh.cells)["scored"] == 2


@pytest.mark.django_db
def test_within_the_allowance_a_changed_summary_is_still_served(settings, moderator):
    settings.VIGIL_METRICS_MAX_STALENESS = 60
    labelled(moderator, 0.9, "harmful")
    rollups_refresh()
    first = window_summary(model_version=active(), window=window_named("24h"))
    labelled(moderator, 0.2, "safe")
    rollups_refresh()
    assert totals(window_summary(model_version=active(), window=window_named("24h")).cells)["scored"] == 1
    WindowSummary.objects.update(computed_at=first.computed_at - timedelta(seconds=61))
    assert totals(window_summary(model_version=active(), window=window_named("24h")).cells)["scored"] == 2


@pytest.mark.django_db
def test_the_beat_task_computes_every_window_of_the_active_model(moderator):
    labelled(moderator, 0.9, "harmful")
    rollups_refresh()
    assert summaries_refresh() == 4
    assert summaries_refresh() == 0  # nothing changed
    rows = WindowSummary.objects.filter(model_version=active())
    assert sorted(rows.values_list("window", flat=True)) == ["24h", "30d", "7d", "90d"]
    assert [sum(cell[1] for cell in row.cells) for row in rows] == [1, 1, 1, 1]  # the one scored upload
