"""Token formats: a split token is found by its name and checked by its secret's hash."""

from __future__ import annotations

from cargohold.auth.secrets import (
    ALNUM,
    OAUTH_TOKEN_PREFIX_LENGTH,
    OAUTH_TOKEN_SECRET_LENGTH,
    hash_token,
    new_split_token,
    split_token,
    token_matches,
)


def test_a_new_token_splits_back_into_its_name_and_secret() -> None:
    token = new_split_token(OAUTH_TOKEN_PREFIX_LENGTH, OAUTH_TOKEN_SECRET_LENGTH)
    assert len(token.code) == OAUTH_TOKEN_PREFIX_LENGTH + OAUTH_TOKEN_SECRET_LENGTH
    assert set(token.code) <= set(ALNUM)
    assert token.secret_hash == hash_token(token.secret)

    presented = split_token(token.code, OAUTH_TOKEN_PREFIX_LENGTH)
    assert presented == token
    assert token_matches(presented.secret, token.secret_hash)


def test_a_code_too_short_to_hold_a_secret_is_no_token() -> None:
    assert split_token("a" * OAUTH_TOKEN_PREFIX_LENGTH, OAUTH_TOKEN_PREFIX_LENGTH) is None
    assert split_token("", OAUTH_TOKEN_PREFIX_LENGTH) is None
