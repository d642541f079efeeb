from __future__ import annotations

from django import forms
from django.conf import settings

from moderation.services.categories import categories_active
from reviews.models import Decision, ModeratorPreferences, ReviewRound
from reviews.selectors.decisions import ALL, STANDING, UNDONE, DecisionFilters
from reviews.selectors.queue import ORDERING_LABELS, Ordering, QueueFilters


def category_choices() -> list[tuple[str, str]]:
    """The active harmful categories (moderation's Category rows), in review order."""
    return [(c.key, c.name) for c in categories_active()]


class DecisionForm(forms.Form):
    label = forms.ChoiceField(choices=Decision.Label.choices)
    category = forms.ChoiceField(required=False, choices=())
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    time_spent_ms = forms.IntegerField(required=False, min_value=0, max_value=86_400_000, widget=forms.HiddenInput)
    # Set by the page when the image was unblurred; an approval of an automatic reject needs it,
    # or the explicit confirmation below.
    revealed = forms.BooleanField(required=False, widget=forms.HiddenInput)
    confirmed_unrevealed = forms.BooleanField(required=False, label="Approve without looking")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "—"), *category_choices()]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("label") == Decision.Label.SAFE:
            data["category"] = ""
        return data


class GroupDecisionForm(DecisionForm):
    """One decision for the picture and the near copies the page showed (``members``: their round
    ids, comma-separated, from a hidden input)."""

    members = forms.CharField(max_length=20_000, widget=forms.HiddenInput)
    confirmed_unrevealed = None  # audits, the only rounds that ask for it, are never grouped

    def clean_members(self) -> list[int]:
        parts = [part.strip() for part in self.cleaned_data["members"].split(",") if part.strip()]
        if not parts:
            raise forms.ValidationError("No near copies were shown with this picture; decide it alone.")
        if not all(part.isdigit() for part in parts):
            raise forms.ValidationError("Near copies are given as review round numbers, separated by commas.")
        cap = settings.VIGIL_GROUP_DECISION_MAX - 1
        if len(parts) > cap:
            raise forms.ValidationError(f"A group decision takes at most {cap} near copies; got {len(parts)}.")
        return list(dict.fromkeys(int(part) for part in parts))


class BulkDecisionForm(forms.Form):
    label = forms.ChoiceField(choices=Decision.Label.choices)
    category = forms.ChoiceField(required=False, choices=())
    rounds = forms.TypedMultipleChoiceField(
        coerce=int, choices=(), error_messages={"required": "Select at least one image."}
    )
    revealed = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=False)

    def __init__(self, *args, round_ids: list[int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "Each image's top category"), *category_choices()]
        self.fields["rounds"].choices = self.fields["revealed"].choices = [(pk, pk) for pk in round_ids]


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


class DecisionListForm(forms.Form):
    """Filters of the decisions page, from the query string. ``moderator`` is for admins only."""

    moderator = forms.ModelChoiceField(
        required=False, queryset=None, to_field_name="username", empty_label="Everyone", label="Moderator"
    )
    label = forms.ChoiceField(required=False, choices=[("", "Any"), *Decision.Label.choices])
    category = forms.ChoiceField(required=False, choices=())
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    overturned = forms.ChoiceField(
        required=False,
        label="Against the model",
        choices=[("", "Either"), ("yes", "Overturned the model"), ("no", "Agreed with the model")],
    )
    state = forms.ChoiceField(
        required=False,
        label="Show",
        choices=[(STANDING, "Standing decisions"), (UNDONE, "Undone decisions"), (ALL, "Both")],
    )

    def __init__(self, *args, everyone: bool, **kwargs) -> None:
        from django.contrib.auth import get_user_model

        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "Any"), *category_choices()]
        if everyone:
            self.fields["moderator"].queryset = get_user_model().objects.filter(decisions__isnull=False).distinct()
        else:
            del self.fields["moderator"]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def result(self) -> DecisionFilters:
        """The filters asked for; only the default (standing decisions) when the form is invalid."""
        if not self.is_valid():
            return DecisionFilters()
        data = self.cleaned_data
        moderator = data.get("moderator")
        return DecisionFilters(
            moderator_id=moderator.pk if moderator else None,
            label=data["label"],
            category=data["category"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            overturned={"yes": True, "no": False}.get(data["overturned"]),
            state=data["state"] or STANDING,
        )
