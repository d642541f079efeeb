from django import forms

ACCEPT = "image/jpeg,image/png,image/webp,image/gif,video/mp4,video/quicktime,video/webm,video/x-matroska,.mkv"


class UploadForm(forms.Form):
    image = forms.FileField(
        label="Image or video",
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
        help_text="JPEG, PNG, WebP or GIF; or an MP4, MOV, WebM or MKV video.",
    )
