"""Styled 403, 404 and 500 pages: the reason and the navigation; the 500 needs neither the
database nor a signed-in user. A favicon on every page."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import RequestFactory
from django.views.defaults import server_error

from accounts.roles import Role
from tests.factories import make_user


@pytest.mark.django_db
def test_a_moderator_on_an_admin_page_gets_a_styled_403_with_the_reason_and_the_navigation(client):
    client.force_login(make_user(Role.MODERATOR, username="mod"))
    response = client.get("/insights/dashboard/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "css/vigil.css" in page and 'class="topbar"' in page
    assert "Not allowed here" in page and "Admins only." in page
    assert 'href="/review/"' in page and "Review queue" in page  # the moderator's navigation
    assert "mod" in page  # signed in as


@pytest.mark.django_db
def test_an_unknown_page_is_a_styled_404_with_the_navigation(client):
    client.force_login(make_user(Role.UPLOADER, username="up"))
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "css/vigil.css" in page and "Page not found" in page and "/no-such-page/" in page
    assert 'href="/uploads/"' in page
    assert "Resolver404" not in page


@pytest.mark.django_db
def test_a_404_raised_with_a_reason_shows_it(client):
    client.force_login(make_user(Role.ADMIN, username="boss"))
    response = client.get("/insights/dashboard/?model=nope")
    assert response.status_code == 404
    assert "No such model version." in response.content.decode()


def test_the_500_page_renders_without_the_database_or_a_user(monkeypatch):
    """Rendered as Django renders it (no request context); any database access would fail here."""

    def refuse(*args, **kwargs):
        raise AssertionError("the 500 page touched the database")

    for connection in connections.all():
        monkeypatch.setattr(connection, "cursor", refuse)
    request = RequestFactory().get("/anything/")  # no user, no session
    response = server_error(request)
    assert response.status_code == 500
    page = response.content.decode()
    assert "css/vigil.css" in page and 'class="topbar"' in page
    assert "Something went wrong" in page and 'href="/"' in page


@pytest.mark.django_db
def test_every_page_links_the_favicon_and_it_is_served(client):
    client.force_login(make_user(Role.UPLOADER, username="up"))
    page = client.get("/uploads/").content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page
    assert client.get("/static/favicon.svg").status_code == 200
    # Browsers (and pages Vigil does not template, like the API docs) ask for /favicon.ico.
    response = client.get("/favicon.ico")
    assert response.status_code in (301, 302) and response["Location"].endswith("favicon.svg")
