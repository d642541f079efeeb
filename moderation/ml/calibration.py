"""Temperature scaling: one scalar ``T`` so that ``sigmoid(logit / T)`` is a calibrated P(harmful).

Fitted on the validation logits of the early-stopped model by minimising the (unweighted) negative
log-likelihood of the validation labels over ``log T`` (L-BFGS), as Guo et al., "On Calibration of
Modern Neural Networks" (2017), describe. Dividing every logit by the same positive ``T`` keeps
the ranking (ROC AUC) and the decision at 0.5 (the logit's sign) unchanged; it moves every other
threshold, which is the point: after calibration a threshold of 0.9 means "about 90 % of the
images scored here are harmful" on data like the validation set, whichever model version scores.

With fewer than :data:`MIN_IMAGES` validation images, only one class among them, or the classes
perfectly separated (the NLL then falls forever as ``T`` shrinks to 0), the fit is not attempted
and ``T`` stays 1 (the network's own scale), with a note saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

MIN_IMAGES = 20
# A fit outside this range means the validation set told us nothing sensible (all logits nearly
# equal, or perfectly separated at a huge scale); it is clamped and said so.
T_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    nll_before: float | None
    nll_after: float | None
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "temperature": self.temperature,
            "val_nll_before": self.nll_before,
            "val_nll_after": self.nll_after,
            "note": self.note,
        }


def _nll(logits: torch.Tensor, labels: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    return functional.binary_cross_entropy_with_logits(logits / temperature, labels)


def fit_temperature(logits, labels) -> TemperatureFit:
    """The temperature minimising the validation NLL (see the module's docstring)."""
    logits = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    labels = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    if len(labels) < MIN_IMAGES:
        return TemperatureFit(1.0, None, None, f"not fitted: {len(labels)} validation images (< {MIN_IMAGES}); T = 1")
    if len(torch.unique(labels)) < 2:
        return TemperatureFit(1.0, None, None, "not fitted: the validation images are all of one class; T = 1")
    if logits[labels == 0].max() < logits[labels == 1].min():
        # The NLL keeps falling as T shrinks to 0: validation says nothing about the right scale.
        return TemperatureFit(
            1.0, None, None, "not fitted: the validation images are perfectly separated, so no finite T fits; T = 1"
        )
    before = float(_nll(logits, labels, 1.0))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = _nll(logits, labels, log_t.exp())
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    note = ""
    if not math.isfinite(temperature):
        temperature, note = 1.0, "the fit diverged; T = 1"
    elif not T_RANGE[0] <= temperature <= T_RANGE[1]:
        clamped = min(max(temperature, T_RANGE[0]), T_RANGE[1])
        note = f"the fit gave T = {temperature:.4g}, clamped to {clamped:g}"
        temperature = clamped
    after = float(_nll(logits, labels, temperature))
    if after > before:  # never worse than leaving the scale alone
        temperature, after, note = 1.0, before, "the fit did not lower the validation NLL; T = 1"
    return TemperatureFit(round(temperature, 6), before, after, note)


def calibrated(logits, temperature: float) -> np.ndarray:
    """P(harmful) from raw logits and a temperature (NumPy; what serving computes)."""
    logits = np.asarray(logits, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-logits / temperature))
