"""The harmful categories the team defines (:class:`~moderation.models.Category` rows): what
moderators tag rejects with, in order, and what retraining may learn.

The rows are read on every call (a handful, indexed): an admin's new category shows on the next
page load without a restart. With no active row at all (every one turned off), the
``VIGIL_REVIEW_CATEGORIES`` seed stands in, so a reject can always be tagged.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from moderation.models import Category


@dataclass(frozen=True)
class CategoryInfo:
    key: str
    name: str
    learn_from_labels: int


def categories_active() -> list[CategoryInfo]:
    """The active categories in review order (keys 1–9 on the review page follow it)."""
    rows = [
        CategoryInfo(c.key, c.name, c.learn_from_labels)
        for c in Category.objects.filter(active=True).order_by("position", "id")
    ]
    if rows:
        return rows
    return [
        CategoryInfo(key, key.replace("_", " ").capitalize(), Category._meta.get_field("learn_from_labels").default)
        for key in settings.VIGIL_REVIEW_CATEGORIES
    ]


def category_keys() -> list[str]:
    return [c.key for c in categories_active()]
