from django import forms

from reviews.models import Decision


class DecisionForm(forms.Form):
    label = forms.ChoiceField(choices=Decision.Label.choices)
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    time_spent_ms = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
