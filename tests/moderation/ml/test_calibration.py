"""Temperature scaling and the expected calibration error."""

from __future__ import annotations

import numpy as np
import pytest

from moderation.ml.calibration import MIN_IMAGES, calibrated, fit_temperature
from moderation.ml.metrics import comparison_metrics, expected_calibration_error


def _sampled(temperature: float, n: int = 4000, seed: int = 0):
    """Logits whose calibrated probabilities are sigmoid(logit / temperature), and labels drawn from them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logits / temperature))).astype(int)
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_the_fit_recovers_the_temperature_that_made_the_labels(true_t):
    logits, labels = _sampled(true_t)
    fit = fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(true_t, rel=0.1)
    assert fit.nll_after < fit.nll_before
    assert fit.note == ""
    raw = expected_calibration_error(labels, calibrated(logits, 1.0))
    fixed = expected_calibration_error(labels, calibrated(logits, fit.temperature))
    assert fixed < 0.03 < raw


def test_already_calibrated_logits_keep_a_temperature_near_one():
    logits, labels = _sampled(1.0)
    assert fit_temperature(logits, labels).temperature == pytest.approx(1.0, rel=0.1)


def test_too_few_validation_images_leave_t_at_one():
    logits, labels = _sampled(3.0, n=MIN_IMAGES - 1)
    fit = fit_temperature(logits, labels)
    assert (fit.temperature, fit.nll_before) == (1.0, None)
    assert f"{MIN_IMAGES - 1} validation images" in fit.note


def test_one_class_or_perfect_separation_leaves_t_at_one():
    logits = np.linspace(-3, 3, 40)
    one_class = fit_temperature(logits, np.ones(40, dtype=int))
    assert one_class.temperature == 1.0 and "one class" in one_class.note
    separated = fit_temperature(logits, (logits > 0).astype(int))
    assert separated.temperature == 1.0 and "perfectly separated" in separated.note


def test_ece_of_hand_computed_cases():
    # One bin: confidence 0.9, 3 of 4 right.
    assert expected_calibration_error([1, 1, 1, 0], [0.9] * 4) == pytest.approx(0.15)
    # Confidence is that of the predicted class: 0.2 -> "safe" at 0.8 (right), 0.8 -> "harmful" at 0.8 (wrong).
    assert expected_calibration_error([0, 0], [0.2, 0.8]) == pytest.approx(0.3)
    # A coin's 0.5 is calibrated when half are harmful.
    assert expected_calibration_error([0, 1, 0, 1], [0.5] * 4) == pytest.approx(0.0)
    assert np.isnan(expected_calibration_error([], []))


def test_ece_bins_are_fifteen_equal_widths():
    # 0.6 with every image right (gap 0.4) and 0.95 with 55% right (gap 0.4): different bins,
    # so the gaps add up; one wide bin would let them cancel out.
    labels = [1] * 20 + [1] * 11 + [0] * 9
    scores = [0.6] * 20 + [0.95] * 20
    assert expected_calibration_error(labels, scores) == pytest.approx(0.4)
    # 0.94 and 0.99 share the bin (14/15, 1]: one mean confidence against one accuracy.
    assert expected_calibration_error([1, 0], [0.94, 0.99]) == pytest.approx(abs(0.5 - 0.965))
    # 0.90 and 0.95 do not ((0.8667, 0.9333] and (0.9333, 1]).
    assert expected_calibration_error([1, 0], [0.90, 0.95]) == pytest.approx((0.10 + 0.95) / 2)


def test_comparison_metrics_report_each_models_ece():
    assert comparison_metrics([1, 1, 1, 0], [0.9, 0.9, 0.9, 0.9])["ece"] == pytest.approx(0.15)
