from celery import shared_task

from metrics.services.rollups import rollups_refresh


@shared_task(ignore_result=True)
def refresh_rollups() -> int:
    """Keep the hourly roll-ups current, so pages and scrapes find little to recompute."""
    return rollups_refresh()
