"""The promotion rule: when a retrained candidate may replace the active model by itself.

Both models are scored on the same held-out images (the export's ``val`` split, which the
candidate never trained on). The candidate is promoted automatically only if

- its ROC AUC is not lower than the active model's,
- its harmful recall (at 90 % precision) is not lower, and
- its best F1 is higher by at least ``VIGIL_PROMOTION_F1_MARGIN`` (default 0.01).

Otherwise it stays a candidate for an admin to shadow, promote or discard. Figures are threshold-
free (``moderation.ml.metrics.comparison_metrics``), so a new model's different calibration does
not decide the comparison; on promotion its own suggested thresholds become a new policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reasons: list[str]


def promotion_verdict(*, candidate: dict, active: dict, f1_margin: float | None = None) -> Verdict:
    margin = settings.VIGIL_PROMOTION_F1_MARGIN if f1_margin is None else f1_margin
    reasons = []
    if candidate["roc_auc"] < active["roc_auc"]:
        reasons.append(f"ROC AUC {candidate['roc_auc']:.4f} < active {active['roc_auc']:.4f}")
    if candidate["harmful_recall"] < active["harmful_recall"]:
        reasons.append(f"harmful recall {candidate['harmful_recall']:.4f} < active {active['harmful_recall']:.4f}")
    if candidate["f1"] < active["f1"] + margin:
        reasons.append(f"F1 {candidate['f1']:.4f} not above active {active['f1']:.4f} + {margin:g}")
    if not reasons:
        reasons.append(
            f"AUC {candidate['roc_auc']:.4f} ≥ {active['roc_auc']:.4f}, recall {candidate['harmful_recall']:.4f} ≥ "
            f"{active['harmful_recall']:.4f}, F1 {candidate['f1']:.4f} ≥ {active['f1']:.4f} + {margin:g}"
        )
        return Verdict(True, reasons)
    return Verdict(False, reasons)
