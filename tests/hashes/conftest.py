from __future__ import annotations

import pytest

from hashes.models import UploadHash
from tests.factories import make_round, make_user


def hex_hash(n: int) -> str:
    """A distinct, valid PDQ hash for each ``n`` (far from the others in the high bits)."""
    return f"{(n * 0x9E3779B97F4A7C15_F39CC0605CEDC834_1082276BF3A27251_F86C6A11D0C18E95) % (1 << 256):064x}"


@pytest.fixture
def rejected_by_human(db):
    """Make an upload a moderator rejected (its standing decision), with its frames' PDQ hashes."""
    from accounts.roles import Role
    from reviews.services.claims import round_claim
    from reviews.services.decisions import decision_create

    moderator = make_user(Role.MODERATOR)

    def make(*hashes: tuple[str, int], category: str = "weapon", label: str = "harmful"):
        round_ = make_round(score=0.6)
        for frame, (pdq, quality) in enumerate(hashes):
            UploadHash.objects.create(upload=round_.upload, frame=frame, pdq=pdq, quality=quality)
        round_claim(round_id=round_.pk, moderator=moderator)
        decision_create(round_id=round_.pk, moderator=moderator, label=label, category=category)
        round_.upload.refresh_from_db()
        return round_.upload

    return make
