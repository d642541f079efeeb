"""The dashboard on day one: charts with axes and tick labels that say "not enough data yet"
instead of drawing an empty frame, no "0.000/s", and the model dropdown showing the model that
?model= names (also a retired one)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from metrics.charts import curve_chart, series_chart
from moderation.models import ModelVersion
from moderation.services.model_versions import model_version_ensure_active

pytestmark = pytest.mark.django_db


def test_an_empty_dashboard_says_not_enough_data_yet(client, admin_user):
    model_version_ensure_active()
    client.force_login(admin_user)
    page = client.get(reverse("metrics:dashboard")).content.decode()
    charts = re.findall(r"<svg class=\"chart\".*?</svg>", page, re.S)
    assert len(charts) == 4
    for chart in charts:
        assert "not enough data yet" in chart
        assert "<polyline" not in chart
    assert "0.000/s" not in page and "none scored in the window" in page


def test_curves_have_axes_with_tick_labels():
    chart = curve_chart("ROC", [0, 0.2, 1], [0, 0.8, 1], x_label="false positive rate", y_label="true positive rate")
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', chart)
    assert ticks.count("0") == 2 and ticks.count("0.5") == 2 and ticks.count("1") == 2
    assert "false positive rate" in chart and "not enough data" not in chart and "<polyline" in chart


def test_a_series_needs_two_points_and_labels_both_axes():
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    one = series_chart("Depth", [(now, 3)], y_label="open reviews")
    assert "not enough data yet" in one
    two = series_chart("Depth", [(now - timedelta(hours=5), 3), (now, 7)], y_label="open reviews")
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', two)
    assert "0" in ticks and "7" in ticks and len(ticks) >= 4 and "not enough data" not in two


def test_the_dropdown_shows_the_model_named_in_the_query(client, admin_user):
    active = model_version_ensure_active()
    older = ModelVersion.objects.get(pk=active.pk)
    older.pk, older.name, older.status = None, "weapons-v0", ModelVersion.Status.RETIRED
    older.save()
    client.force_login(admin_user)
    for name in ("metrics:dashboard", "metrics:thresholds"):
        page = client.get(reverse(name) + "?model=weapons-v0").content.decode()
        selected = re.findall(r'<option value="([^"]+)" selected', page)
        assert selected[0] == "weapons-v0", (name, selected)
