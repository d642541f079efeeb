"""Roll-ups keep the standing harmful labels per category, and stay derived data."""

import importlib

import pytest
from django.apps import apps

from metrics.models import RollupState, ScoreCell, WindowSummary
from metrics.selectors.traffic import traffic_cells
from metrics.selectors.windows import window_named
from metrics.services.rollups import rollups_refresh
from metrics.services.summaries import window_summary
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create, decision_undo
from tests.metrics.helpers import active, labelled

ROWS = ("hour", "cell", "label_category", "scored", "queued", "labelled_harmful", "labelled_safe")


def rows() -> list[tuple]:
    return sorted(ScoreCell.objects.values_list(*ROWS))


def label_mix(moderator) -> None:
    """Five uploads in one cell: harmful naming weapon (2), nudity (1), nothing (1); one safe."""
    for label, category in (("harmful", "weapon"), ("harmful", "weapon"), ("harmful", "nudity"), ("harmful", "")):
        labelled(moderator, 0.3, label, category)
    labelled(moderator, 0.3, "safe")


@pytest.mark.django_db
def test_harmful_labels_are_counted_per_category_and_sum_to_the_cell(moderator):
    label_mix(moderator)
    rollups_refresh()
    [cell] = traffic_cells(model_version=active(), window=window_named("24h"))
    assert (cell.counts["scored"], cell.counts["labelled_harmful"], cell.counts["labelled_safe"]) == (5, 4, 1)
    assert cell.harmful_by_category == {"weapon": 2, "nudity": 1}
    assert ScoreCell.objects.count() == 3  # the cell's rows: "", weapon, nudity
    [summarised] = window_summary(model_version=active(), window=window_named("7d")).cells
    assert summarised == cell


@pytest.mark.django_db
def test_the_standing_decisions_category_counts(moderator):
    first = labelled(moderator, 0.3, "harmful", "weapon")
    decision_undo(moderator=moderator)
    reopened = first.upload.review_rounds.get(status="open")
    round_claim(round_id=reopened.pk, moderator=moderator)
    decision_create(round_id=reopened.pk, moderator=moderator, label="harmful", category="nudity")
    rollups_refresh()
    [cell] = traffic_cells(model_version=active(), window=window_named("24h"))
    assert cell.harmful_by_category == {"nudity": 1}


@pytest.mark.django_db
def test_a_rebuild_gives_the_same_rows(moderator):
    label_mix(moderator)
    rollups_refresh()
    before = rows()
    rollups_refresh(rebuild=True)
    assert rows() == before


@pytest.mark.django_db
def test_the_migration_leaves_the_rollups_to_be_rebuilt(moderator):
    label_mix(moderator)
    rollups_refresh()
    window_summary(model_version=active(), window=window_named("7d"))
    before = rows()
    migration = importlib.import_module("metrics.migrations.0002_score_cell_label_category")
    migration.clear_rollups(apps, None)
    assert not ScoreCell.objects.exists() and not WindowSummary.objects.exists()
    assert RollupState.objects.get(pk=1).refreshed_until is None
    assert rollups_refresh() >= 1  # a plain refresh after the migration rebuilds every hour
    assert rows() == before
