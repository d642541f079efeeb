from celery import shared_task

from metrics.services.rollups import rollups_refresh
from metrics.services.summaries import summaries_refresh


@shared_task(ignore_result=True)
def refresh_rollups() -> int:
    """Keep the hourly roll-ups and the window summaries current, so pages and scrapes find little
    to recompute."""
    hours = rollups_refresh()
    summaries_refresh()
    return hours
