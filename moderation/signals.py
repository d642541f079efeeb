"""Signals the machine side sends, so the human side can react without being imported here."""

from django.dispatch import Signal

# Sent inside the routing transaction, right after an upload left ``pending``:
# ``upload`` is the refreshed Upload (queued, failed, or approved/rejected by the model).
# A receiver that raises rolls the routing back, so the task retries; receivers must be idempotent.
upload_routed = Signal()
