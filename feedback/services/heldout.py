"""Judging a candidate against the active model on held-out images.

Both models score the same images and are routed by the policy in force. The main set is this
deployment's held-out labels (the export's ``val`` split; the split seed is fixed, so an image held
out once stays held out). The *guard* sets are what earlier models knew: the base dataset's
held-out split, and every held-out set the active model was judged on (recorded in its metrics),
so pointing the base dataset elsewhere does not silently drop the old check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings

from feedback.services.promotion import GuardSet, HeldOut
from feedback.services.training_data import BaseData, HeldOutSet
from moderation.models import ModelVersion
from moderation.routing import Route, route_scores
from moderation.services.policies import policy_current

DEPLOYMENT = "deployment"  # the held-out set of this deployment's own labels (the export's val split)


def _score_heldout(model_version: ModelVersion, samples: list) -> list[tuple[int, dict[str, float]]]:
    """(label, category scores) of each held-out image the model could score."""
    from moderation.classifiers import classifier_for
    from moderation.ml.inference import score_files

    results = score_files(
        classifier_for(model_version), [s.path for s in samples], max_frames=settings.VIGIL_MAX_SCORED_FRAMES
    )
    return [(s.label, r.scores) for s, r in zip(samples, results, strict=True)]


def heldout_build(
    *, candidate: ModelVersion, active: ModelVersion, samples: list, summarise: bool = True
) -> tuple[dict, HeldOut]:
    """Score ``samples`` with both models; routing under the policy in force. An image either
    model could not score is left out for both, so they are judged on the same set."""
    from moderation.ml.inference import harmful_score
    from moderation.ml.metrics import comparison_metrics

    mine, theirs = _score_heldout(candidate, samples), _score_heldout(active, samples)
    both = [(m, t) for m, t in zip(mine, theirs, strict=True) if m[1] and t[1]]
    policy = policy_current()
    labels = np.asarray([m[0] for m, _ in both], dtype=int)
    scores = {
        "candidate": np.asarray([harmful_score(m[1]) for m, _ in both], dtype=float),
        "active": np.asarray([harmful_score(t[1]) for _, t in both], dtype=float),
    }
    approved = {
        name: np.asarray([route_scores(pair[i][1], policy.thresholds).route == Route.APPROVE for pair in both])
        for i, name in enumerate(("candidate", "active"))
    }
    heldout = HeldOut(
        labels=labels,
        candidate=scores["candidate"],
        active=scores["active"],
        candidate_approved=approved["candidate"].astype(bool),
        active_approved=approved["active"].astype(bool),
        policy_version=policy.version,
    )
    if not summarise:  # a guard set: the verdict's own figures describe it
        return {}, heldout
    summary = {name: comparison_metrics(labels.tolist(), scores[name].tolist()) for name in scores}
    return summary, heldout


def heldout_compare(*, candidate: ModelVersion, active: ModelVersion, root: Path) -> tuple[dict, HeldOut]:
    """Both models on the export's ``val`` split (this deployment's held-out labels)."""
    from moderation.ml.datasets import load_split

    return heldout_build(candidate=candidate, active=active, samples=load_split(root, "val"))


def guard_sets(*, base: BaseData | None, active: ModelVersion) -> list[HeldOutSet]:
    """The held-out sets besides this deployment's own that a candidate must not do worse on: the
    base dataset's, and every one the active model was judged on that is not among them (an
    operator who points the base dataset elsewhere does not thereby drop the old guard)."""
    sets = [base.heldout] if base is not None else []
    seen = {s.key for s in sets}
    for data in ((active.metrics or {}).get("heldout") or {}).get("sets", []):
        earlier = HeldOutSet.from_dict(data)
        if earlier.name == DEPLOYMENT or earlier.key in seen:
            continue  # this run's export holds every held-out decision (the split seed is fixed)
        seen.add(earlier.key)
        sets.append(earlier)
    return sets


def guards_score(*, candidate: ModelVersion, active: ModelVersion, sets: list[HeldOutSet]) -> list[GuardSet]:
    from moderation.ml.datasets import DatasetError

    guards = []
    for held in sets:
        label = f"{held.name} {held.root} ({held.split or 'all'})"
        try:
            samples = held.samples()
        except (DatasetError, OSError) as exc:
            guards.append(GuardSet(label, None, note=str(exc)))
            continue
        _none, heldout = heldout_build(candidate=candidate, active=active, samples=samples, summarise=False)
        if min(heldout.harmful, heldout.safe) == 0:
            note = f"it now holds {heldout.harmful} harmful and {heldout.safe} safe images the models could score"
            guards.append(GuardSet(label, None, note=note))
            continue
        guards.append(GuardSet(label, heldout))
    return guards
