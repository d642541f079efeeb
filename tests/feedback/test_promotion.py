"""The promotion rule on held-out scores: which rule decides, with numbers and intervals."""

import numpy as np
import pytest

from feedback.services.promotion import (
    ALL_MET,
    AUC,
    FORCED,
    FORGETTING,
    NEW_MISSES,
    RECALL,
    SAMPLE_SIZE,
    GuardSet,
    HeldOut,
    Rules,
    promotion_verdict,
)

RULES = Rules(min_harmful=50, min_safe=50, confidence=0.95, auc_margin=0.0, min_recall=0.9, resamples=1000)


def heldout(n_harmful: int, n_safe: int, *, candidate_gap: float, active_gap: float, seed: int = 7) -> HeldOut:
    """Scores whose harmful images sit ``gap`` logits above the safe ones, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_harmful, dtype=int), np.zeros(n_safe, dtype=int)]
    noise = rng.normal(size=(2, len(labels)))
    candidate = 1 / (1 + np.exp(-(noise[0] + candidate_gap * labels - candidate_gap / 2)))
    active = 1 / (1 + np.exp(-(noise[1] + active_gap * labels - active_gap / 2)))
    return HeldOut(labels, candidate, active, candidate < 0.1, active < 0.1, policy_version=4)


def test_a_clearly_better_candidate_on_enough_images_is_promoted():
    verdict = promotion_verdict(heldout(80, 80, candidate_gap=6, active_gap=1.5), forced=False, rules=RULES)
    assert (verdict.promote, verdict.rule) == (True, ALL_MET)
    auc = verdict.figures["auc"]
    assert auc["interval"][0] > 0 and auc["interval"][0] <= auc["difference"] <= auc["interval"][1]
    recall = verdict.figures["recall"]["candidate"]
    assert recall["of"] == 80 and recall["interval"][0] >= 0.9
    assert "95% interval" in verdict.reasons[0] and "policy v4" in verdict.reasons[0]


def test_six_perfect_images_prove_nothing():
    """Reproduction 1's numbers: AUC 1.0 on 6 held-out images."""
    data = heldout(3, 3, candidate_gap=30, active_gap=0.5)
    verdict = promotion_verdict(data, forced=False, rules=RULES)
    assert verdict.figures["auc"]["candidate"] == 1.0
    assert (verdict.promote, verdict.rule) == (False, SAMPLE_SIZE)
    assert verdict.reasons[0] == "held-out set too small (3 harmful, 3 safe; need 50 harmful and 50 safe)"
    assert verdict.figures["heldout"] == {"harmful": 3, "safe": 3}


def test_a_forced_run_is_never_promoted_even_when_every_figure_is_good():
    verdict = promotion_verdict(heldout(80, 80, candidate_gap=6, active_gap=1.5), forced=True, rules=RULES)
    assert (verdict.promote, verdict.rule) == (False, FORCED)
    assert verdict.reasons == ["forced run (started even with few new labels): never promoted automatically"]


def test_a_point_gain_inside_the_noise_is_held():
    verdict = promotion_verdict(heldout(60, 60, candidate_gap=2.2, active_gap=2.0), forced=False, rules=RULES)
    assert (verdict.promote, verdict.rule) == (False, AUC)
    low, high = verdict.figures["auc"]["interval"]
    assert low <= 0 < high
    assert "no gain above +0 shown" in verdict.reasons[0]


def test_a_better_ranker_that_lets_harmful_images_through_the_policy_is_held():
    data = heldout(80, 80, candidate_gap=6, active_gap=1.5)
    leaky = HeldOut(  # the policy in force auto-approves 20 of its harmful images
        data.labels,
        data.candidate,
        data.active,
        data.labels.astype(bool) & (np.arange(160) < 20),
        data.active_approved,
        4,
    )
    verdict = promotion_verdict(leaky, forced=False, rules=RULES)
    assert (verdict.promote, verdict.rule) == (False, RECALL)
    assert verdict.figures["recall"]["candidate"]["kept"] == 60
    assert "harmful recall under policy v4 60/80 = 0.750" in verdict.reasons[0]


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_the_auc_margin_is_judged_on_the_interval(margin):
    rules = Rules(**{**RULES.__dict__, "auc_margin": margin})
    verdict = promotion_verdict(heldout(80, 80, candidate_gap=6, active_gap=1.5), forced=False, rules=rules)
    assert verdict.promote is (verdict.figures["auc"]["interval"][0] > margin)
    assert verdict.promote is (margin == 0.0)


def with_approvals(data: HeldOut, candidate_approved, active_approved) -> HeldOut:
    return HeldOut(data.labels, data.candidate, data.active, candidate_approved, active_approved, data.policy_version)


def test_one_harmful_image_the_active_model_kept_from_auto_approve_holds_the_candidate():
    data = heldout(80, 80, candidate_gap=6, active_gap=1.5)
    nothing = np.zeros(160, dtype=bool)
    one, another = nothing.copy(), nothing.copy()
    one[3] = another[5] = True  # harmful images (the first 80 are harmful)
    # Each model auto-approves one harmful image, so the totals (the recall rule) tie; but the
    # candidate's is one the active model sent to a human.
    verdict = promotion_verdict(with_approvals(data, one, another), forced=False, rules=RULES)
    assert (verdict.promote, verdict.rule) == (False, NEW_MISSES)
    assert verdict.figures["new_misses"] == 1
    assert verdict.figures["recall"]["candidate"]["kept"] == verdict.figures["recall"]["active"]["kept"] == 79
    assert "auto-approves 1 labelled harmful image(s) that the active model kept" in verdict.reasons[0]
    # The same image approved by both models is no new miss; a safe one never is.
    both = promotion_verdict(with_approvals(data, one, one), forced=False, rules=RULES)
    safe_only = nothing.copy()
    safe_only[100] = True
    assert both.promote
    assert promotion_verdict(with_approvals(data, safe_only, nothing), forced=False, rules=RULES).promote
    allowed = Rules(**{**RULES.__dict__, "max_new_misses": 1})
    assert promotion_verdict(with_approvals(data, one, another), forced=False, rules=allowed).promote


def guard(n: int, *, candidate_gap: float, active_gap: float, seed: int = 11) -> HeldOut:
    return heldout(n, n, candidate_gap=candidate_gap, active_gap=active_gap, seed=seed)


def test_a_candidate_that_forgot_the_base_dataset_is_held_though_it_wins_at_home():
    home = heldout(80, 80, candidate_gap=6, active_gap=1.5)
    forgot = GuardSet("base dataset /data/base (test)", guard(150, candidate_gap=1.0, active_gap=4.0))
    verdict = promotion_verdict(home, forced=False, rules=RULES, guards=[forgot])
    assert (verdict.promote, verdict.rule) == (False, FORGETTING)
    [figures] = verdict.figures["guards"]
    assert figures["available"] and figures["auc"]["candidate"] < figures["auc"]["active"]
    assert figures["auc"]["interval"][0] < -RULES.max_auc_loss
    assert verdict.reasons[0].startswith("base dataset /data/base (test) (150 harmful, 150 safe): ROC AUC")
    assert "not shown to lose less than 0.02 of AUC" in verdict.reasons[0]


def test_a_candidate_that_kept_what_it_knew_passes_the_guard():
    home = heldout(80, 80, candidate_gap=6, active_gap=1.5)
    kept = GuardSet("base", guard(150, candidate_gap=6.0, active_gap=4.0))
    verdict = promotion_verdict(home, forced=False, rules=RULES, guards=[kept])
    assert (verdict.promote, verdict.rule) == (True, ALL_MET)
    assert "base: AUC difference interval" in verdict.reasons[0]


def test_a_guard_too_small_to_show_anything_or_gone_holds_the_candidate():
    home = heldout(80, 80, candidate_gap=6, active_gap=1.5)
    tiny = GuardSet("base", guard(3, candidate_gap=6.0, active_gap=6.0))
    gone = GuardSet("earlier base /old (test)", None, note="/old is not a directory")
    for guards, text in (([tiny], "interval not estimable"), ([gone], "not scored (/old is not a directory)")):
        verdict = promotion_verdict(home, forced=False, rules=RULES, guards=guards)
        assert (verdict.promote, verdict.rule) == (False, FORGETTING)
        assert text in verdict.reasons[0]


def test_new_misses_on_a_guard_set_hold_the_candidate():
    home = heldout(80, 80, candidate_gap=6, active_gap=1.5)
    data = guard(100, candidate_gap=6.0, active_gap=4.0)
    leaked = np.zeros(200, dtype=bool)
    leaked[:2] = True
    verdict = promotion_verdict(
        home, forced=False, rules=RULES, guards=[GuardSet("base", with_approvals(data, leaked, np.zeros(200, bool)))]
    )
    assert (verdict.promote, verdict.rule) == (False, NEW_MISSES)
    assert verdict.figures["guards"][0]["new_misses"] == 2
