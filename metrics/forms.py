from __future__ import annotations

from django import forms

from metrics.selectors.windows import DEFAULT_WINDOW, WINDOWS


class ViewForm(forms.Form):
    """Which model version and window a page shows."""

    window = forms.ChoiceField(choices=[(k, k) for k in WINDOWS], required=False, initial=DEFAULT_WINDOW)
    model = forms.CharField(required=False, max_length=100)
    threshold = forms.FloatField(required=False, min_value=0, max_value=1, help_text="Operating threshold")


class TargetsForm(forms.Form):
    """Targets the "Suggest" button finds thresholds for."""

    min_reject_precision = forms.FloatField(min_value=0.5, max_value=1, initial=0.98, label="Auto-reject precision ≥")
    min_harmful_recall = forms.FloatField(min_value=0.5, max_value=1, initial=0.99, label="Harmful recall ≥")


class PolicyForm(forms.Form):
    """A new policy: two thresholds per category, and why. The numbers are posted and saved
    exactly as given; ``loaded`` fills them in (repr of each float, never rounded for display)."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    reroute = forms.BooleanField(required=False, label="Re-route the items queued now under the new policy")
    confirm_no_human_band = forms.BooleanField(
        required=False,
        label="I confirm: where approve below equals reject from, no image of that category reaches a human",
    )
    # The model draft these numbers were loaded from, marked applied when they are saved.
    draft = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args,
        categories: list[str],
        loaded: dict[str, dict[str, float]],
        optional: frozenset[str] = frozenset(),
        **kwargs,
    ) -> None:
        """``optional``: categories the policy in force has no thresholds for (a team category
        just added). Left empty, or at the cold start 0 / 1, they stay out of the saved policy,
        which routes them exactly the same: never auto-approved, never auto-rejected."""
        super().__init__(*args, **kwargs)
        self.categories = categories
        self.optional = optional
        for name in categories:
            for bound, kind in (("approve_below", "approve"), ("reject_from", "reject")):
                field = f"{bound}__{name}"
                # A NumberInput renders str(value): the float's shortest exact form, step="any".
                label = f"{name} {bound.replace('_', ' ')}, exact value"
                widget = forms.NumberInput(attrs={"data-exact": kind, "aria-label": label})
                self.fields[field] = forms.FloatField(
                    min_value=0, max_value=1, widget=widget, required=name not in optional
                )
                self.initial.setdefault(field, loaded[name][bound])

    def thresholds(self) -> dict[str, dict[str, float]]:
        data = self.cleaned_data
        chosen = {}
        for name in self.categories:
            approve, reject = data.get(f"approve_below__{name}"), data.get(f"reject_from__{name}")
            if name in self.optional and approve in (None, 0.0) and reject in (None, 1.0):
                continue  # cold start: the same routing as no thresholds at all
            chosen[name] = {
                "approve_below": 0.0 if approve is None else approve,
                "reject_from": 1.0 if reject is None else reject,
            }
        return chosen
