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

    def __init__(self, *args, categories: list[str], loaded: dict[str, dict[str, float]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.categories = categories
        for name in categories:
            for bound, kind in (("approve_below", "approve"), ("reject_from", "reject")):
                field = f"{bound}__{name}"
                # A NumberInput renders str(value): the float's shortest exact form, step="any".
                label = f"{name} {bound.replace('_', ' ')}, exact value"
                widget = forms.NumberInput(attrs={"data-exact": kind, "aria-label": label})
                self.fields[field] = forms.FloatField(min_value=0, max_value=1, widget=widget)
                self.initial.setdefault(field, loaded[name][bound])

    def thresholds(self) -> dict[str, dict[str, float]]:
        data = self.cleaned_data
        return {
            name: {"approve_below": data[f"approve_below__{name}"], "reject_from": data[f"reject_from__{name}"]}
            for name in self.categories
        }
