"""spoc.settings: one way to read a worker's setting, and validators whose message names owner, setting and value."""

from __future__ import annotations

import math

import pytest

from spoc import settings
from spoc.workers import ThreadWorker


class Mailer(ThreadWorker):
    job_timeout = 30.0

    def main(self) -> None:
        pass


def test_a_setting_is_read_from_the_options_then_the_attribute_then_the_default() -> None:
    assert settings.read(Mailer("m", plugin_options={"job_timeout": 5}), "job_timeout", 1.0) == 5
    assert settings.read(Mailer("m"), "job_timeout", 1.0) == 30.0
    assert settings.read(Mailer("m"), "retries", 3) == 3
    assert settings.read(Mailer("m", plugin_options={"retries": None}), "retries", 3) is None  # given, even None


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (lambda w, v: settings.seconds(w, "job_timeout", v), -1, "job_timeout=-1 must be a number of seconds > 0"),
        (lambda w, v: settings.seconds(w, "job_timeout", v), 0, "job_timeout=0 must be a number of seconds > 0"),
        (lambda w, v: settings.seconds(w, "job_timeout", v), "5s", "job_timeout='5s' must be a number of seconds"),
        (lambda w, v: settings.seconds(w, "job_timeout", v), True, "job_timeout=True must be"),
        (lambda w, v: settings.seconds(w, "job_timeout", v), math.inf, "job_timeout=inf must be"),
        (lambda w, v: settings.seconds(w, "job_timeout", v), None, "job_timeout=None must be a number of seconds > 0"),
        (
            lambda w, v: settings.seconds(w, "pause", v, zero=True, none="to turn it off"),
            -1,
            "pause=-1 must be a number of seconds >= 0, or None to turn it off",
        ),
        (lambda w, v: settings.whole(w, "retries", v), 2.5, "retries=2.5 must be a whole number >= 0"),
        (lambda w, v: settings.whole(w, "batch", v, least=1), 0, "batch=0 must be a whole number >= 1"),
        (lambda w, v: settings.whole(w, "batch", v, least=1), False, "batch=False must be a whole number >= 1"),
        (lambda w, v: settings.number(w, "factor", v, least=1), 0.5, "factor=0.5 must be a number >= 1"),
        (lambda w, v: settings.text(w, "stream", v), "", "stream='' must be a non-empty string"),
        (lambda w, v: settings.choice(w, "mode", v, ("a", "b")), "c", "mode='c' is not one of 'a', 'b'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_worker_the_setting_and_the_value(check, value, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as raised:
        check(Mailer("mail"), value)
    assert str(raised.value).startswith(f"worker 'mail' (Mailer): {message}")


def test_a_good_value_comes_back_normalised_and_none_where_it_is_allowed() -> None:
    worker = Mailer("mail")
    assert settings.seconds(worker, "t", 2) == 2.0 and isinstance(settings.seconds(worker, "t", 2), float)
    assert settings.seconds(worker, "t", 0, zero=True) == 0.0
    assert settings.seconds(worker, "t", None, none="to turn it off") is None
    assert settings.whole(worker, "n", 3) == 3 and settings.whole(worker, "n", None, none="for no limit") is None
    assert settings.number(worker, "x", 1.5) == 1.5
    assert settings.text(worker, "s", "orders") == "orders"
    assert settings.choice(worker, "mode", "a", ("a", "b")) == "a"


def test_the_owner_may_be_what_took_the_value() -> None:
    with pytest.raises(ValueError, match=r"^Supervisor: within=0 must be a number of seconds > 0$"):
        settings.seconds("Supervisor", "within", 0)
    assert settings.owner(Mailer("mail")) == "worker 'mail' (Mailer)"
