"""The pages that ask for a password state the directory's own rules, and the portal holds to them."""

from __future__ import annotations

from typing import Any

from tests.conftest import AuthActions, post_form


def signed_in(app: Any, login: str = "s1000001") -> Any:
    client = app.test_client()
    AuthActions(client).login(login)
    return client


def test_the_change_page_names_the_ppolicy_minimum_of_10(make_app, policy_min_length_10) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(make_app(directory="openldap"))
    page = client.get("/password").get_data(as_text=True)
    assert "At least 10 characters" in page
    assert 'data-min-length="10"' in page
    assert "It cannot be one of the last 3 passwords used." in page


def test_a_password_shorter_than_the_directory_minimum_is_refused_by_the_portal(
    make_app, policy_min_length_10
) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(make_app(directory="openldap"))
    response = post_form(
        client,
        "/password",
        {"current_password": "Correct-Horse-1001", "new_password": "Qz7#vKp!w", "confirm": "Qz7#vKp!w"},
    )
    assert response.status_code == 400
    assert "This password is too short." in response.get_data(as_text=True)


def test_the_ad_pages_name_the_domain_minimum_and_complexity(make_app, domain_min_length_10) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(make_app(directory="ad"))
    page = client.get("/password").get_data(as_text=True)
    assert "At least 10 characters" in page
    assert "Use characters of at least three kinds" in page
    assert "It cannot be one of the last 24 passwords used." in page


def test_the_builtin_directory_keeps_the_portal_setting(make_app) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(make_app(PASSWORD_MIN_LENGTH=12))
    page = client.get("/password").get_data(as_text=True)
    assert "At least 12 characters" in page
    assert "It cannot be one of the last" not in page


def change(client: Any, current: str, new: str) -> Any:
    return post_form(client, "/password", {"current_password": current, "new_password": new, "confirm": new})


FIRST, SECOND = "Quiet-Lantern-Orbit-71", "Velvet-Canyon-Drift-38"


def test_a_second_change_within_the_ppolicy_minimum_age_says_when(make_app, policy_min_age_one_hour) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(make_app(directory="openldap", TIME_ZONE="America/New_York"))
    assert "can be changed again after 1 hour." in client.get("/password").get_data(as_text=True)
    assert change(client, "Correct-Horse-1001", FIRST).status_code == 303
    response = change(client, FIRST, SECOND)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "The password was changed too recently. It can be changed again from " in page
    assert "(America/New_York time)" in page


def test_ad_default_minimum_age_of_one_day_is_explained(make_app, domain_min_age_one_day) -> None:  # type: ignore[no-untyped-def]
    """The seed password was set moments ago, as after a help-desk reset: AD takes no change for a day."""
    client = signed_in(make_app(directory="ad"))
    response = change(client, "Correct-Horse-1001", FIRST)
    assert response.status_code == 400
    assert "The password was changed too recently. It can be changed again from " in response.get_data(
        as_text=True
    )
