"""The pure pairing core: codes, proofs, single-use expiring invites, short codes."""

from __future__ import annotations

import random

import pytest

from islandrun.node import pairing as p
from islandrun.protocol.messages import TrustTier

INVITER = "12D3KooWBjxd6XiN5vmP7YcijsMpEAcnGoGBojza6nCdzVo9jv6o"
K_JOIN, K_INV = b"j" * 32, b"i" * 32
NOW = 1_800_000_000.0


def make(book: p.InviteBook, *, lifetime: float = 600) -> p.Invite:
    return book.create(device_id=INVITER, name="laptop", addresses=("/ip4/127.0.0.1/tcp/1",),
                       tier=TrustTier.FRIEND, lifetime=lifetime, now=NOW, rng=random.Random(7))


def proof(invite: p.Invite, secret: bytes | None = None) -> bytes:
    return p.join_proof(secret or invite.secret, invite.invite_id, K_JOIN, K_INV)


def test_code_round_trip_and_secret_never_in_repr() -> None:
    invite = make(p.InviteBook())
    assert p.parse_code(invite.code()) == invite
    assert p.parse_code(invite.code().lower()) == invite  # forgiving about case and spaces
    assert invite.secret.hex() not in repr(invite)


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda c: "XX" + c, "should start with IR1-"),
        (lambda c: c[:-3], "damaged"),
        (lambda c: c[:20] + ("A" if c[20] != "A" else "B") + c[21:], "damaged"),
        (lambda c: c + "!", "damaged"),
        (lambda c: "IR1-" + "A" * 5000, "start with IR1-"),
        (lambda c: "", "start with IR1-"),
    ],
)
def test_malformed_codes_are_refused_clearly(mangle, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(p.PairingError, match=words):
        p.parse_code(mangle(make(p.InviteBook()).code()))


def test_invite_is_single_use() -> None:
    book = p.InviteBook()
    invite = make(book)
    assert book.redeem(invite.invite_id, None, proof(invite), K_JOIN, K_INV, NOW) == invite
    with pytest.raises(p.PairingError, match="already used"):
        book.redeem(invite.invite_id, None, proof(invite), K_JOIN, K_INV, NOW)


def test_expired_invite() -> None:
    book = p.InviteBook()
    invite = make(book, lifetime=60)
    with pytest.raises(p.PairingError, match="expired"):
        book.redeem(invite.invite_id, None, proof(invite), K_JOIN, K_INV, NOW + 61)


def test_wrong_proof_changes_nothing_then_burns() -> None:
    book = p.InviteBook()
    invite = make(book)
    for _ in range(p.MAX_FAILURES - 1):
        with pytest.raises(p.PairingError, match="wrong code"):
            book.redeem(invite.invite_id, None, b"x" * 32, K_JOIN, K_INV, NOW)
    assert book.redeem(invite.invite_id, None, proof(invite), K_JOIN, K_INV, NOW)
    other = make(book)
    for _ in range(p.MAX_FAILURES):
        with pytest.raises(p.PairingError):
            book.redeem(other.invite_id, None, b"x" * 32, K_JOIN, K_INV, NOW)
    with pytest.raises(p.PairingError, match="burned"):
        book.redeem(other.invite_id, None, proof(other), K_JOIN, K_INV, NOW)


def test_proofs_bind_both_keys() -> None:
    invite = make(p.InviteBook())
    args = (invite.secret, invite.invite_id)
    assert p.join_proof(*args, K_JOIN, K_INV) != p.join_proof(*args, b"m" * 32, K_INV)
    assert p.join_proof(*args, K_JOIN, K_INV) != p.join_proof(*args, K_JOIN, b"m" * 32)
    assert p.join_proof(*args, K_JOIN, K_INV) != p.welcome_proof(*args, K_JOIN, K_INV)


def test_lifetime_bounds() -> None:
    with pytest.raises(p.PairingError):
        make(p.InviteBook(), lifetime=0)
    with pytest.raises(p.PairingError):
        make(p.InviteBook(), lifetime=p.MAX_EXPIRY + 1)


def test_human_codes() -> None:
    assert len(p.WORDS) == 256 and len(set(p.WORDS)) == 256
    assert p.GUESS_CHANCE == 1 / 16_777_216
    book = p.InviteBook()
    invite = make(book)
    code = book.create_human(invite, random.Random(3))
    nameplate, password = p.parse_human_code(code)
    assert INVITER.endswith(nameplate)
    assert book.human_invite(NOW) == (invite, password)
    for bad in ("abcd-saddle-baker", "abcd-saddle-baker-notaword", "toolong-a-b-c", ""):
        with pytest.raises(p.PairingError, match="NAME-word-word-word"):
            p.parse_human_code(bad)
