from django.dispatch import receiver

from moderation.signals import upload_routed
from reviews.services.rounds import rounds_open_for_routed


@receiver(upload_routed, dispatch_uid="reviews.open_round")
def open_round(sender, upload, **kwargs) -> None:
    rounds_open_for_routed(upload=upload)
