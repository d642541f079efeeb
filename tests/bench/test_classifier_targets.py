"""bench/classifier.py prints the issue's targets, met or not, from its results."""

from bench.classifier import target_lines
from moderation.ml.backbones import DEFAULT_BACKBONE


def test_the_targets_say_met_or_not_met():
    results = {
        "models": {
            f"Vigil fine-tuned {DEFAULT_BACKBONE}": {
                "accuracy": 0.961,
                "categories": {"gun_cctv": {"n": 8, "flagged": 0.5}, "knife": {"n": 60, "flagged": 0.98}},
            }
        }
    }
    lines = target_lines(results)
    assert "  accuracy: 0.961 (target >= 0.97) NOT met" in lines
    assert "  CCTV weapons recall at 0.5 (n=8): 0.500 (target >= 0.9) NOT met" in lines
    results["models"][f"Vigil fine-tuned {DEFAULT_BACKBONE}"]["accuracy"] = 0.975
    assert "  accuracy: 0.975 (target >= 0.97) met" in target_lines(results)
    assert target_lines({"models": {}})[-1].startswith("  not measured")
