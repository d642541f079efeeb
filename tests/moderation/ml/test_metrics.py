import numpy as np
import pytest
from PIL import Image

from moderation.ml.metrics import Evaluation, binary_metrics, suggest_thresholds, threshold_suggestion

# 10 images, hand-counted at threshold 0.5: TP 4 (0.9, 0.8, 0.7, 0.6), FN 1 (0.4),
# FP 1 (0.55), TN 4 (0.1, 0.2, 0.3, 0.45).
LABELS = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.55, 0.1, 0.2, 0.3, 0.45])


def test_binary_metrics_match_hand_computed_values():
    figures = binary_metrics(LABELS, SCORES)
    assert figures["accuracy"] == pytest.approx(8 / 10)
    assert figures["precision"] == pytest.approx(4 / 5)
    assert figures["recall"] == pytest.approx(4 / 5)
    assert figures["f1"] == pytest.approx(0.8)
    # Pairs (harmful, safe) ranked correctly: every harmful beats every safe except
    # 0.4 < 0.55 and 0.4 < 0.45: 23 of 25.
    assert figures["roc_auc"] == pytest.approx(23 / 25)


def test_confusion_matrix_and_report_follow_the_papers_layout():
    evaluation = Evaluation(LABELS, SCORES)
    assert evaluation.confusion().tolist() == [[4, 1], [1, 4]]
    report = evaluation.report()
    assert report["harmful"]["precision"] == pytest.approx(0.8)
    assert report["safe"]["recall"] == pytest.approx(0.8)
    assert report["harmful"]["support"] == 5
    assert report["accuracy"] == pytest.approx(0.8)
    text = evaluation.format()
    for heading in ("precision", "recall", "f1-score", "support", "macro avg", "weighted avg", "ROC AUC 0.9200"):
        assert heading in text


def test_threshold_moves_the_operating_point():
    strict = binary_metrics(LABELS, SCORES, threshold=0.65)
    assert strict["precision"] == pytest.approx(1.0)
    assert strict["recall"] == pytest.approx(3 / 5)


def test_suggested_thresholds_keep_recall_and_precision_targets():
    thresholds = suggest_thresholds(LABELS, SCORES, min_recall=1.0, min_precision=1.0)
    # every harmful image must stay out of auto-approve: approve only below the lowest, 0.4
    assert thresholds["approve_below"] == pytest.approx(0.4)
    # auto-rejects must all be harmful: from 0.6 up (0.55 is safe)
    assert thresholds["reject_from"] == pytest.approx(0.6)
    loose = suggest_thresholds(LABELS, SCORES, min_recall=0.8, min_precision=0.8)
    assert loose["approve_below"] == pytest.approx(0.6)
    assert loose["reject_from"] >= loose["approve_below"]


def test_roc_png_is_written(tmp_path):
    path = Evaluation(LABELS, SCORES).write_roc_png(tmp_path / "out" / "roc.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 200


def test_no_thresholds_are_suggested_from_too_few_labels():
    labels = [1] * 49 + [0] * 200
    scores = [0.3 + 0.6 * i / 49 for i in range(49)] + [0.05 + 0.5 * i / 200 for i in range(200)]  # overlapping
    assert threshold_suggestion(labels, scores) == (
        None,
        ["no thresholds suggested: 49 harmful and 200 safe validation images, need at least 50 of each"],
    )
    labels, scores = [*labels, 1], [*scores, 0.5]
    thresholds, notes = threshold_suggestion(labels, scores)
    assert thresholds == suggest_thresholds(labels, scores)
    assert notes == ["suggested from 50 harmful and 200 safe validation images"]


def test_a_suggestion_without_a_human_band_says_so():
    # Perfectly separated scores: the recall and precision targets meet at one threshold.
    labels = [1] * 60 + [0] * 60
    scores = [0.9] * 60 + [0.1] * 60
    thresholds, notes = threshold_suggestion(labels, scores)
    assert thresholds == {"approve_below": 0.9, "reject_from": 0.9}
    assert "leaves NO human band (approve below 0.9, reject from 0.9)" in notes[1]
