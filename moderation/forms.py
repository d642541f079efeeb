from django import forms


class UploadForm(forms.Form):
    image = forms.FileField(
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}),
        help_text="JPEG, PNG, WebP or GIF.",
    )
