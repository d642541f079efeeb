from __future__ import annotations

from django import forms

from feedback.services.export import ExportFilters
from moderation.models import ModelVersion


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        choices=[
            ("zip", "Zip of the ImageFolder with both manifests"),
            ("csv", "CSV manifest"),
            ("jsonl", "JSONL manifest"),
        ]
    )
    since = forms.DateTimeField(required=False, help_text="decided at or after")
    until = forms.DateTimeField(required=False, help_text="decided before")
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.all(), required=False, to_field_name="name", label="Model version"
    )
    label = forms.ChoiceField(choices=[("", "any"), ("harmful", "harmful"), ("safe", "safe")], required=False)
    category = forms.CharField(required=False, max_length=50)
    moderator = forms.CharField(required=False, max_length=150, help_text="username")
    overturned_only = forms.BooleanField(required=False, label="Only where humans overturned the model")
    val_fraction = forms.FloatField(min_value=0, max_value=0.9, initial=0.2)
    seed = forms.IntegerField(initial=13)

    def filters(self) -> ExportFilters:
        data = self.cleaned_data
        return ExportFilters(
            since=data["since"],
            until=data["until"],
            model_version=data["model_version"].name if data["model_version"] else "",
            label=data["label"],
            category=data["category"],
            moderator=data["moderator"],
            overturned_only=data["overturned_only"],
        )


class ModelActionForm(forms.Form):
    """Shadow a version, promote it, roll back, or switch its tiled scoring. Promotion and rollback
    change what routes uploads: they need a ticked confirmation, and a rollback says why."""

    action = forms.ChoiceField(
        choices=[("shadow", "shadow"), ("promote", "promote"), ("rollback", "rollback"), ("tiling", "tiling")]
    )
    note = forms.CharField(required=False, max_length=500)
    confirm = forms.BooleanField(required=False)
    tiling = forms.ChoiceField(choices=ModelVersion.Tiling.choices, required=False)

    def clean(self) -> dict:
        data = super().clean()
        action = data.get("action")
        if action == "tiling" and not data.get("tiling"):
            self.add_error("tiling", "Choose a tiling.")
        if action in ("promote", "rollback") and not data.get("confirm"):
            self.add_error("confirm", f"Tick the box to confirm the {action}: it changes what routes uploads.")
        if action == "rollback" and not (data.get("note") or "").strip():
            self.add_error("note", "Say why you roll back.")
        return data
