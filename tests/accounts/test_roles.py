import pytest

from accounts.roles import Role, user_role
from accounts.services import user_set_role
from tests.factories import make_user


@pytest.mark.django_db
def test_a_page_looks_the_role_up_once(client, django_assert_num_queries):
    """The view's permission check and the template's role flags share one group query."""
    client.force_login(make_user(Role.MODERATOR))
    # session, user, role (once, not three times), the queue counts aggregate, the page's count,
    # the scoring-health banner's worker heartbeats and oldest pending upload, the last decision
    # (the undo form), the team's categories (the reject buttons); the empty queue fetches no rows
    with django_assert_num_queries(9):
        assert client.get("/review/").status_code == 200


@pytest.mark.django_db
def test_changing_the_role_is_seen_at_once():
    user = make_user(Role.UPLOADER)
    assert user_role(user) is Role.UPLOADER
    user_set_role(user=user, role=Role.MODERATOR)
    assert user_role(user) is Role.MODERATOR
