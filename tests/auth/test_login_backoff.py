"""Exponential back-off after failed logins, per account, on every login path.

An account with failures on record answers 429 with Retry-After (Quay's plain-text body) to
every login, right or wrong, until its window ends; a success clears the record. Paths: the
API's /signin and /signin/verify, /v2/auth Basic with a password, a robot token or an app
token, and the registry's remembered-password cache.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Role
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_user,
    issue_token,
)
from tests.support.registry import create_app_token, create_robot, get_token, make_repository
from tests.support.server import LiveServer
from tests.support.sessions import csrf_client, session_client, signin

# Windows of 30 s, 90 s, 210 s...: long enough that a loaded machine always sends the next
# request inside them. Tests move the last failure back in time instead of waiting them out,
# and wait for real only for the last few seconds of one.
SCALE_S = 60
FIRST_WINDOW_S = 30
SECOND_WINDOW_S = 90
THROTTLED_BODY = "Too many login attempts. \nPlease reset your Quay password and try again."
SCOPE = "repository:library/none:pull"

Login = Callable[[], httpx.Response]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("server"), {"LOGIN_FAILURE_BACKOFF_SCALE_SEC": SCALE_S}
    ).start()
    yield live
    live.destroy()


def _assert_throttled(response: httpx.Response) -> int:
    """A 429 exactly as Quay sends it; returns its Retry-After in seconds."""
    assert response.status_code == 429, response.text
    assert response.text == THROTTLED_BODY
    assert response.headers["content-type"].startswith("text/html")
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def _record(server: LiveServer, username: str) -> tuple[int, dt.datetime | None]:
    with server.db() as session:
        row = session.execute(
            select(User.invalid_login_attempts, User.last_invalid_login).where(
                User.username == username
            )
        ).one()
        return row[0], row[1]


def _set_record(server: LiveServer, username: str, attempts: int, age_s: float = 0) -> None:
    """Failures on record, the last one `age_s` ago (on this or another replica)."""
    with server.db() as session:
        user = session.scalar(select(User).where(User.username == username))
        user.invalid_login_attempts = attempts
        user.last_invalid_login = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_s)


def _pass_time(server: LiveServer, username: str, seconds: float) -> None:
    """Move the last failure `seconds` back, as if that much time had gone by."""
    with server.db() as session:
        user = session.scalar(select(User).where(User.username == username))
        user.last_invalid_login -= dt.timedelta(seconds=seconds)


def _assert_waits_about(response: httpx.Response, seconds: int) -> int:
    retry_after = _assert_throttled(response)
    assert seconds - 5 <= retry_after <= seconds
    return retry_after


def _back_off_and_recover(
    server: LiveServer, account: str, wrong: Login, right: Login, refused: int
) -> None:
    """Failures grow the window (30 s, then 90 s), the right secret waits too, and a success
    after Retry-After clears the record."""
    assert wrong().status_code == refused
    _assert_waits_about(right(), FIRST_WINDOW_S)
    assert _record(server, account)[0] == 1, "a refused attempt must not count"
    _pass_time(server, account, FIRST_WINDOW_S)
    assert wrong().status_code == refused
    _assert_waits_about(wrong(), SECOND_WINDOW_S)
    assert _record(server, account)[0] == 2
    _pass_time(server, account, SECOND_WINDOW_S - 3)
    last_wait = _assert_waits_about(right(), 3)
    time.sleep(last_wait)
    assert right().status_code == 200
    assert _record(server, account) == (0, None)
    assert right().status_code == 200


def test_signin_backs_off_and_recovers(server: LiveServer, user: TestUser) -> None:
    with csrf_client(server) as client:
        _back_off_and_recover(
            server,
            user.username,
            lambda: signin(client, user.username, "not-the-password"),
            lambda: signin(client, user.username, user.password),
            403,
        )


def test_signin_by_email_counts_against_the_account(server: LiveServer, user: TestUser) -> None:
    with csrf_client(server) as client:
        assert signin(client, user.email, "not-the-password").status_code == 403
        _assert_throttled(signin(client, user.username, user.password))


def test_v2_auth_password_backs_off_and_recovers(server: LiveServer, user: TestUser) -> None:
    _back_off_and_recover(
        server,
        user.username,
        lambda: get_token(server, (user.username, "not-the-password"), SCOPE),
        lambda: get_token(server, (user.username, user.password), SCOPE),
        401,
    )


def test_robot_token_backs_off_and_recovers(server: LiveServer, user: TestUser) -> None:
    repo = make_repository(server, user.username, "robotpulls", public=False)
    token = create_robot(server, user.username, "puller", {repo: Role.read})
    robot = f"{user.username}+puller"
    scope = f"repository:{repo}:pull"
    _back_off_and_recover(
        server,
        robot,
        lambda: get_token(server, (robot, "X" * 64), scope),
        lambda: get_token(server, (robot, token), scope),
        401,
    )
    # The owner's own account is not the robot's: it was never held back.
    assert _record(server, user.username) == (0, None)


def test_app_token_backs_off_and_recovers(server: LiveServer, user: TestUser) -> None:
    code = create_app_token(server, user.username)
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    _back_off_and_recover(
        server,
        user.username,
        lambda: get_token(server, ("$app", forged), SCOPE),
        lambda: get_token(server, ("$app", code), SCOPE),
        401,
    )


def test_hammering_is_refused_without_checking(server: LiveServer) -> None:
    """The issue's finding: 150 wrong passwords on /signin, 150 wrong Basic logins on
    /v2/auth and 100 wrong robot tokens used to be checked at full speed."""
    person = create_user(server)
    repo = make_repository(server, person.username, "hammered", public=False)
    create_robot(server, person.username, "hammered", {repo: Role.read})
    robot = f"{person.username}+hammered"
    victim = create_user(server)

    with csrf_client(server) as client:
        signins = [signin(client, person.username, f"guess{n}").status_code for n in range(150)]
    basics = [
        get_token(server, (victim.username, f"guess{n}"), SCOPE).status_code for n in range(150)
    ]
    robots = [
        get_token(server, (robot, f"{n:064d}"), f"repository:{repo}:pull").status_code
        for n in range(100)
    ]
    for statuses, refused, account in (
        (signins, 403, person.username),
        (basics, 401, victim.username),
        (robots, 401, robot),
    ):
        assert set(statuses) == {refused, 429}
        checked = statuses.count(refused)
        # Each check widens the window, so only the first few are ever looked at.
        assert checked <= 2, statuses
        assert _record(server, account)[0] == checked


def test_throttled_attempts_are_cheap(server: LiveServer, user: TestUser) -> None:
    """While an account backs off, nothing is checked: no bcrypt for right or wrong."""
    with csrf_client(server) as client:
        started = time.perf_counter()
        assert signin(client, user.username, "not-the-password").status_code == 403
        checked_s = time.perf_counter() - started
        _set_record(server, user.username, 3)
        timings = []
        for password in (user.password, "not-the-password") * 10:
            started = time.perf_counter()
            _assert_throttled(signin(client, user.username, password))
            timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < checked_s
    assert _record(server, user.username)[0] == 3


def test_window_is_capped(server: LiveServer, user: TestUser) -> None:
    _set_record(server, user.username, 40)
    response = get_token(server, (user.username, user.password), SCOPE)
    assert _assert_throttled(response) == server.settings.LOGIN_FAILURE_BACKOFF_MAX_SEC


def test_remembered_password_waits_out_the_back_off(server: LiveServer, user: TestUser) -> None:
    """The registry remembers recent good passwords; a remembered one is still refused
    while the account backs off, and clears the record once it may log in again."""
    good = (user.username, user.password)
    assert get_token(server, good, SCOPE).status_code == 200
    _set_record(server, user.username, 1, age_s=FIRST_WINDOW_S - 3)
    time.sleep(_assert_waits_about(get_token(server, good, SCOPE), 3))
    assert get_token(server, good, SCOPE).status_code == 200
    assert _record(server, user.username) == (0, None)


def test_password_change_clears_the_record(server: LiveServer, user: TestUser) -> None:
    with session_client(server, user.username, user.password) as client:
        _set_record(server, user.username, 5)
        changed = client.put("/api/v1/user/", json={"password": "a-new-password1"})
        assert changed.status_code == 200
    assert _record(server, user.username) == (0, None)
    with csrf_client(server) as client:
        assert signin(client, user.username, "a-new-password1").status_code == 200


def test_concurrent_guesses_are_checked_once_per_window(server: LiveServer, user: TestUser) -> None:
    """Guesses racing each other: once failures are on record, only the one attempt that
    claims the next slot is checked; the window it opens (450 s) outlasts the burst."""
    _set_record(server, user.username, 3, age_s=211)
    wrong = (user.username, "not-the-password")
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda _: get_token(server, wrong, SCOPE).status_code, range(60)))
    assert statuses.count(401) == 1 and statuses.count(429) == 59
    assert _record(server, user.username)[0] == 4


def test_concurrent_guesses_on_a_clean_account_are_checked_once_per_process(
    server: LiveServer, user: TestUser
) -> None:
    """Each HTTP process checks one account's logins one at a time, so a burst of guesses
    gets at most one check per process before the record holds every process back; a burst
    of right passwords all get in."""
    wrong = (user.username, "not-the-password")
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda _: get_token(server, wrong, SCOPE).status_code, range(60)))
    checked = statuses.count(401)
    assert 1 <= checked <= server.workers and statuses.count(429) == 60 - checked
    assert _record(server, user.username)[0] == checked
    other = create_user(server)
    right = (other.username, other.password)
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: get_token(server, right, SCOPE).status_code, range(10)))
    assert statuses == [200] * 10


def test_replicas_share_the_back_off(server_factory: Callable[..., LiveServer]) -> None:
    """A failure seen by one replica holds the account back on the other. A 20 s scale
    makes the first window 10 s, longer than the test takes on a loaded machine."""
    backoff = {"LOGIN_FAILURE_BACKOFF_SCALE_SEC": 20}
    first = server_factory(backoff)
    second = server_factory(
        {
            **backoff,
            "DB_URI": first.settings.DB_URI,
            "SECRET_KEY": first.settings.SECRET_KEY,
            "DATABASE_SECRET_KEY": first.settings.DATABASE_SECRET_KEY,
        }
    )
    person = create_user(first)
    assert get_token(first, (person.username, "not-the-password"), SCOPE).status_code == 401
    assert _assert_throttled(get_token(second, (person.username, person.password), SCOPE)) > 5
    with csrf_client(second) as client:
        assert _assert_throttled(signin(client, person.username, person.password)) > 5
    assert _record(second, person.username)[0] == 1
    # A burst of guesses spread over both replicas: at most one check in each HTTP process.
    target = create_user(first)
    wrong = (target.username, "not-the-password")
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(
                lambda n: get_token((first, second)[n % 2], wrong, SCOPE).status_code, range(40)
            )
        )
    checked = statuses.count(401)
    processes = first.workers + second.workers
    assert 1 <= checked <= processes and statuses.count(429) == 40 - checked
    assert _record(first, target.username)[0] == checked


def test_back_off_can_be_turned_off(server_factory: Callable[..., LiveServer]) -> None:
    live = server_factory({"LOGIN_FAILURE_BACKOFF_SCALE_SEC": 0})
    person = create_user(live)
    statuses = [
        get_token(live, (person.username, f"guess{n}"), SCOPE).status_code for n in range(5)
    ]
    assert statuses == [401] * 5
    assert get_token(live, (person.username, person.password), SCOPE).status_code == 200
    assert _record(live, person.username) == (0, None)


def test_password_confirmations_back_off_too(server: LiveServer, user: TestUser) -> None:
    """Re-entering the password on a live session (fresh login, client key) is a login too:
    a stolen session cannot be used to guess the password."""
    token = issue_token(server, user.username, ALL_SCOPES)
    with (
        session_client(server, user.username, user.password) as browser,
        bearer_client(server, token) as api,
    ):
        assert browser.post("/api/v1/signin/verify", json={"password": "guess"}).status_code == 403
        _assert_throttled(browser.post("/api/v1/signin/verify", json={"password": user.password}))
        _assert_throttled(api.post("/api/v1/user/clientkey", json={"password": user.password}))
    assert _record(server, user.username)[0] == 1
