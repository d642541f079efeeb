"""Signals the machine side sends, so the human side and integrations can react without being
imported here."""

from django.dispatch import Signal

# Sent inside the routing transaction, right after an upload left ``pending``:
# ``upload`` is the refreshed Upload (queued, failed, or approved/rejected by the model).
# A receiver that raises rolls the routing back, so the task retries; receivers must be idempotent.
# A receiver returns something other than None when it put the upload before a human (the worker
# then prepares its display image).
upload_routed = Signal()

# Sent after shadow model versions scored an upload that was already routed (outside any
# transaction): ``upload`` and ``scores``, the shadow Score rows just stored. Sent with
# ``send_robust``: a receiver's error is logged and never reaches the worker (a shadow model
# cannot disturb production).
upload_shadow_scored = Signal()

# Sent inside the transaction that changed what a submitter should hear about an upload
# (``moderation.services.outcomes.outcome_announce``): ``upload`` (refreshed) and ``event``, one of
UPLOAD_DECIDED = "upload.decided"  # approved or rejected, by the model or a moderator (again)
UPLOAD_REOPENED = "upload.reopened"  # a decision was undone; the upload awaits a moderator again
UPLOAD_UNAVAILABLE = "upload.unavailable"  # a remote URL could not be fetched; final
upload_outcome = Signal()

# Sent inside the transaction that changed what routes uploads (the active model, the shadow set,
# the threshold policy), with ``change``: the moderation.models.Change just recorded.
routing_changed = Signal()
