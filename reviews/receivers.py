from django.dispatch import receiver

from moderation.signals import upload_routed, upload_shadow_scored
from reviews.services.rounds import rounds_open_for_routed, rounds_rekey_disagreement


@receiver(upload_routed, dispatch_uid="reviews.open_round")
def open_round(sender, upload, **kwargs):
    """The round opened, if any: the sender then knows a human will look at the upload."""
    return rounds_open_for_routed(upload=upload)


@receiver(upload_shadow_scored, dispatch_uid="reviews.rekey_disagreement")
def rekey_disagreement(sender, upload, **kwargs):
    """A shadow model scored an upload after it was routed: its open round's disagreement key."""
    return rounds_rekey_disagreement(upload_id=upload.pk)
