"""The new-password policy: length, the common-password list, the user's own e-mail."""

from __future__ import annotations

import pytest

from portal.accounts.password_policy import (
    MAX_PASSWORD_LENGTH,
    WeakPassword,
    check_new_password,
    common_passwords,
)

EMAIL = "amira.haddad@unit.example.org"


def reason(password: str, *, email: str | None = EMAIL) -> str:
    with pytest.raises(WeakPassword) as caught:
        check_new_password(password, email=email)
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


@pytest.mark.parametrize(
    "password",
    [
        "violet anchor quarry 58",
        "Tamarind-Lantern-Ochre",
        "cinq chats gris sur le toit",
        "x" * 3 + "Kq7!pLm2zR",
        "ü" * 2 + "Straße-Fähre-9",
        "a" * 4 + "bcde" + "f" * 4,  # 6 distinct characters is enough
    ],
)
def test_good_passwords_pass(password: str) -> None:
    check_new_password(password, email=EMAIL)


def test_short_password_refused_with_the_minimum() -> None:
    assert "at least 12 characters" in reason("Tr0ub4dor&3")
    check_new_password("Tr0ub4dor&3x", email=EMAIL)  # one more character is enough


def test_overlong_password_refused() -> None:
    long = "correct horse " * (MAX_PASSWORD_LENGTH // 14 + 1)
    assert len(long) > MAX_PASSWORD_LENGTH
    assert f"at most {MAX_PASSWORD_LENGTH}" in reason(long)
    check_new_password(long[: MAX_PASSWORD_LENGTH - 1] + "x", email=EMAIL)


def test_common_list_is_loaded_once_and_lowercase() -> None:
    words = common_passwords()
    assert common_passwords() is words
    assert len(words) > 19000
    assert "password" in words and "q1w2e3r4t5y6" in words
    assert all(word == word.lower() for word in words)


@pytest.mark.parametrize(
    "password", ["q1w2e3r4t5y6", "Q1W2E3R4T5Y6", "1qaz2wsx3edc", "123qweasdzxc"]
)
def test_common_passwords_refused_whatever_the_case(password: str) -> None:
    assert "commonly used" in reason(password)


@pytest.mark.parametrize("password", ["sunshine2024!!", "Password123456", "dragon-123456"])
def test_common_password_with_digits_appended_refused(password: str) -> None:
    assert "commonly used" in reason(password)


@pytest.mark.parametrize(
    "password",
    [EMAIL, EMAIL.upper(), "amira.haddad", "Amira.Haddad", "amira.haddad2026!"],
)
def test_email_or_its_local_part_refused(password: str) -> None:
    assert "e-mail" in reason(password)


def test_email_rule_only_applies_with_an_email() -> None:
    check_new_password("amira.haddad.kr", email=None)
    check_new_password("amira.haddad.kr", email="someone.else@unit.example.org")


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "abababababab", "abcdabcdabcd", " " * 12])
def test_too_few_distinct_characters_or_blank_refused(password: str) -> None:
    message = reason(password)
    assert "different characters" in message or "only spaces" in message
