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
    """A new policy: two thresholds per category, and why."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    reroute = forms.BooleanField(required=False, label="Re-route the items queued now under the new policy")

    def __init__(self, *args, categories: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.categories = categories
        for name in categories:
            self.fields[f"approve_below__{name}"] = forms.FloatField(min_value=0, max_value=1)
            self.fields[f"reject_from__{name}"] = forms.FloatField(min_value=0, max_value=1)

    def thresholds(self) -> dict[str, dict[str, float]]:
        data = self.cleaned_data
        return {
            name: {"approve_below": data[f"approve_below__{name}"], "reject_from": data[f"reject_from__{name}"]}
            for name in self.categories
        }
