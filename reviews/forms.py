from __future__ import annotations

from django import forms
from django.conf import settings

from reviews.models import Decision, ModeratorPreferences, ReviewRound
from reviews.selectors.queue import ORDERING_LABELS, Ordering, QueueFilters


def category_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ").capitalize()) for name in settings.VIGIL_REVIEW_CATEGORIES]


class DecisionForm(forms.Form):
    label = forms.ChoiceField(choices=Decision.Label.choices)
    category = forms.ChoiceField(required=False, choices=())
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    time_spent_ms = forms.IntegerField(required=False, min_value=0, max_value=86_400_000, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "—"), *category_choices()]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("label") == Decision.Label.SAFE:
            data["category"] = ""
        return data


class BulkDecisionForm(forms.Form):
    label = forms.ChoiceField(choices=Decision.Label.choices)
    category = forms.ChoiceField(required=False, choices=())
    rounds = forms.TypedMultipleChoiceField(
        coerce=int, choices=(), error_messages={"required": "Select at least one image."}
    )

    def __init__(self, *args, round_ids: list[int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "—"), *category_choices()]
        self.fields["rounds"].choices = [(pk, pk) for pk in round_ids]


class QueueFilterForm(forms.Form):
    """The queue's filters and ordering, from the query string. Bad values are form errors."""

    ordering = forms.ChoiceField(required=False, choices=[(o.value, ORDERING_LABELS[o]) for o in Ordering])
    score_min = forms.FloatField(required=False, min_value=0, max_value=1, label="Score from")
    score_max = forms.FloatField(required=False, min_value=0, max_value=1, label="Score to")
    category = forms.CharField(required=False, max_length=50)
    source = forms.CharField(required=False, max_length=150, help_text="Submitter's username")
    reason = forms.ChoiceField(required=False, choices=[("", "Any"), *ReviewRound.Reason.choices])
    older_than_hours = forms.FloatField(required=False, min_value=0, label="Older than (h)")
    newer_than_hours = forms.FloatField(required=False, min_value=0, label="Newer than (h)")

    def result(self) -> tuple[QueueFilters, Ordering]:
        """The filters and ordering asked for; no filter at all when the form is invalid."""
        if not self.is_valid():
            return QueueFilters(), Ordering.UNCERTAIN
        data = dict(self.cleaned_data)
        ordering = Ordering(data.pop("ordering") or Ordering.UNCERTAIN)
        return QueueFilters(**data), ordering


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = ModeratorPreferences
        fields = ["blur_px", "grayscale", "grid_size"]
        widgets = {"blur_px": forms.NumberInput(attrs={"type": "range", "min": 0, "max": 60, "step": 2})}
