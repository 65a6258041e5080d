"""The sign-in guards on their own: the throttle's counts per name and per address, the bound
on password checks running at once, and the server's own pre-login tokens."""

from __future__ import annotations

import asyncio
import threading

import pytest

from streaming.services.login_throttle import (
    ChecksBusy,
    LoginThrottle,
    PasswordChecks,
    PreloginTokens,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_name_waits_after_its_limit_and_only_until_the_window_passes() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 100, clock)
    for _ in range(3):
        assert throttle.wait_seconds("Op", "192.0.2.1") == 0
        throttle.failed("Op", "192.0.2.1")
        clock.now += 10
    # The name, in any case, from any address, must wait until the first failure is 15 min old.
    assert throttle.wait_seconds("op", "198.51.100.2") == pytest.approx(15 * 60 - 30)
    assert throttle.wait_seconds("other", "192.0.2.1") == 0
    clock.now += 15 * 60 - 30 + 1
    assert throttle.wait_seconds("op", "192.0.2.1") == 0


def test_the_address_waits_after_its_limit_whatever_the_names_and_a_success_does_not_reset_it() -> (
    None
):
    clock = Clock()
    throttle = LoginThrottle(3, 5, clock)
    for n in range(5):
        assert throttle.wait_seconds(f"guess{n}", "192.0.2.1") == 0
        throttle.failed(f"guess{n}", "192.0.2.1")
    assert throttle.wait_seconds("op", "192.0.2.1") == pytest.approx(15 * 60)
    throttle.succeeded("op")  # signing in to an account of one's own
    assert throttle.wait_seconds("anyone", "192.0.2.1") > 0
    assert throttle.wait_seconds("op", "192.0.2.2") == 0


def test_a_success_forgets_the_name() -> None:
    throttle = LoginThrottle(2, 100, Clock())
    throttle.failed("op", "192.0.2.1")
    throttle.succeeded("OP")
    throttle.failed("op", "192.0.2.1")
    assert throttle.wait_seconds("op", "192.0.2.1") == 0


async def test_checks_run_within_the_bound_and_a_full_line_is_refused_at_once() -> None:
    checks = PasswordChecks(running=2, waiting=3)
    release = threading.Event()
    lock = threading.Lock()
    state = {"running": 0, "most": 0, "done": 0}

    def check(n: int) -> int:
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        try:
            assert release.wait(10)
            return n
        finally:
            with lock:
                state["running"] -= 1
                state["done"] += 1

    tasks = [asyncio.create_task(checks.run(check, n)) for n in range(5)]
    await asyncio.sleep(0)
    for _ in range(3):
        with pytest.raises(ChecksBusy):
            await checks.run(check, 99)
    release.set()
    assert await asyncio.gather(*tasks) == [0, 1, 2, 3, 4]
    assert state["most"] == 2 and state["done"] == 5
    # Free again afterwards.
    assert await checks.run(check, 7) == 7


async def test_a_cancelled_request_keeps_its_slot_until_its_check_has_finished() -> None:
    checks = PasswordChecks(running=1, waiting=0)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(10)
        return "slow"

    first = asyncio.create_task(checks.run(slow))
    assert await asyncio.to_thread(started.wait, 10)
    first.cancel()  # the client went away; its argon2 check still runs in its thread
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(ChecksBusy):
        await checks.run(lambda: "second")
    release.set()
    for _ in range(100):  # the slot comes back when the thread ends (bounded wait)
        try:
            assert await checks.run(lambda: "second") == "second"
            break
        except ChecksBusy:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("the slot never came back after the check ended")


def test_prelogin_tokens_are_the_servers_own_and_expire() -> None:
    clock = Clock()
    tokens = PreloginTokens(b"k" * 32, clock)
    token = tokens.issue()
    assert tokens.valid(token)
    assert token != tokens.issue()
    # Made up by a client, signed with another key, altered, or empty: not valid.
    assert not tokens.valid("chosen-by-the-client")
    assert not tokens.valid(PreloginTokens(b"x" * 32, clock).issue())
    nonce, stamp, mac = token.split(".")
    assert not tokens.valid(f"{nonce}.{int(stamp) + 3600}.{mac}")
    assert not tokens.valid(f"{nonce}x.{stamp}.{mac}")
    assert not tokens.valid("") and not tokens.valid(None)
    clock.now += PreloginTokens.MAX_AGE_SECONDS + 1
    assert not tokens.valid(token)


def test_right_credentials_are_remembered_against_their_stored_hash_only() -> None:
    checks = PasswordChecks(running=1, waiting=0)
    assert not checks.known("op", "secret", "$argon2id$one")
    checks.remember("op", "secret", "$argon2id$one")
    assert checks.known("op", "secret", "$argon2id$one")
    # Another password, another name, or the password changed since (a new stored hash): no.
    assert not checks.known("op", "secret2", "$argon2id$one")
    assert not checks.known("op2", "secret", "$argon2id$one")
    assert not checks.known("op", "secret", "$argon2id$two")
    # Names and passwords that run into each other are told apart.
    checks.remember("a:b", "c", "$h")
    assert not checks.known("a", "b:c", "$h")
    # At most REMEMBERED, the least recently used forgotten first.
    for n in range(PasswordChecks.REMEMBERED):
        checks.remember(f"user{n}", "pw", "$h")
    assert not checks.known("op", "secret", "$argon2id$one")
    assert checks.known(f"user{PasswordChecks.REMEMBERED - 1}", "pw", "$h")
