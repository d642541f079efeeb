from django.dispatch import receiver

from moderation.signals import upload_routed
from reviews.services.rounds import rounds_open_for_routed


@receiver(upload_routed, dispatch_uid="reviews.open_round")
def open_round(sender, upload, **kwargs):
    """The round opened, if any: the sender then knows a human will look at the upload."""
    return rounds_open_for_routed(upload=upload)
