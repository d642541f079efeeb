"""Pure routing rule: category scores + thresholds -> outcome. No database, no Django models."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Route(StrEnum):
    APPROVE = "approved"
    REJECT = "rejected"
    QUEUE = "queued"


@dataclass(frozen=True)
class RoutingOutcome:
    route: Route
    reason: str


def route_scores(category_scores: dict[str, float], thresholds: dict[str, dict[str, float]]) -> RoutingOutcome:
    """Reject if any category reaches its ``reject_from``; approve if every category is below its
    ``approve_below``; otherwise a human decides. A category without thresholds is never
    auto-approved, so a new model category cannot slip through an old policy."""
    if not category_scores:
        return RoutingOutcome(Route.QUEUE, "no category scores")
    reaching = [
        (name, score)
        for name, score in category_scores.items()
        if name in thresholds and score >= thresholds[name]["reject_from"]
    ]
    if reaching:
        name, score = max(reaching, key=lambda item: item[1])
        return RoutingOutcome(Route.REJECT, f"{name} {score:.3f} ≥ {thresholds[name]['reject_from']:g}")
    unknown = sorted(set(category_scores) - set(thresholds))
    if unknown:
        return RoutingOutcome(Route.QUEUE, f"no thresholds for {', '.join(unknown)}")
    uncertain = [(name, score) for name, score in category_scores.items() if score >= thresholds[name]["approve_below"]]
    if not uncertain:
        return RoutingOutcome(Route.APPROVE, "every category below approve_below")
    name, score = max(uncertain, key=lambda item: item[1])
    return RoutingOutcome(Route.QUEUE, f"{name} {score:.3f} in review band")
