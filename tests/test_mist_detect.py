"""MIST stage 1: every entity type is found, checksums reject look-alikes, thresholds
are per type, and health words alone do not make a text confidential."""

from __future__ import annotations

import dataclasses
import random

import pytest

from islandrun.node import mist
from islandrun.node.mist import EntityType as T
from islandrun.node.mist import Level
from islandrun.node.mist_detectors import iban_ok, luhn_ok


def found(text: str) -> dict[T, list[str]]:
    out: dict[T, list[str]] = {}
    for e in mist.analyze(text).entities:
        out.setdefault(e.type, []).append(text[e.start : e.end])
    return out


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("write to jane.doe@example.org today", T.EMAIL, "jane.doe@example.org"),
        ("call +44 20 7946 0958 please", T.PHONE, "+44 20 7946 0958"),
        ("my number is (415) 555-0132", T.PHONE, "(415) 555-0132"),
        ("reach me on 06 12 34 56 78", T.PHONE, "06 12 34 56 78"),
        ("SSN 536-22-1234 on file", T.SSN, "536-22-1234"),
        ("card 4111 1111 1111 1111 expires", T.CREDIT_CARD, "4111 1111 1111 1111"),
        ("amex 378282246310005 ok", T.CREDIT_CARD, "378282246310005"),
        ("pay to DE89 3704 0044 0532 0130 00 now", T.IBAN, "DE89 3704 0044 0532 0130 00"),
        ("server at 192.168.10.24 is down", T.IP_ADDRESS, "192.168.10.24"),
        ("ipv6 2001:db8::8a2e:370:7334 fails", T.IP_ADDRESS, "2001:db8::8a2e:370:7334"),
        ("export KEY=AKIAIOSFODNN7EXAMPLE", T.SECRET, "AKIAIOSFODNN7EXAMPLE"),
        ("the password: Tr0ub4dor&3 works", T.SECRET, "Tr0ub4dor&3"),
        ("seen on March 3rd, 2021 again", T.DATE, "March 3rd, 2021"),
        ("born 12/04/1985 in", T.DATE, "12/04/1985"),
        ("a 47-year-old man", T.AGE, "47"),
        ("lives at 221 Baker Street with", T.STREET_ADDRESS, "221 Baker Street"),
        ("moved to Hauptstraße 5 last", T.STREET_ADDRESS, "Hauptstraße 5"),
        ("dx code E11.65 recorded", T.ICD10_CODE, "E11.65"),
        ("MRN: 00482913 admitted", T.MEDICAL_RECORD_NUMBER, "00482913"),
        ("member ID XK-449812 covers", T.HEALTH_PLAN_NUMBER, "XK-449812"),
        ("account number 12345678 closed", T.ACCOUNT_NUMBER, "12345678"),
        ("patient Maria Gonzalez was seen", T.PERSON, "Maria Gonzalez"),
        ("referred by Dr. Okonkwo yesterday", T.PERSON, "Dr. Okonkwo"),
        ("she flew to Lisbon on Monday", T.LOCATION, "Lisbon"),
        ("works for Acme Widgets Inc. now", T.ORGANIZATION, "Acme Widgets Inc"),
        ("history of rheumatoid arthritis noted", T.MEDICAL_CONDITION, "rheumatoid arthritis"),
        ("started metformin last week", T.MEDICATION, "metformin"),
        ("asked about my mortgage rate", T.FINANCIAL_TERM, "mortgage"),
        ("visit https://example.com/a?b=1 now", T.URL, "https://example.com/a?b=1"),
    ],
)
def test_each_entity_type_is_detected(text: str, kind: T, value: str) -> None:
    assert value in found(text).get(kind, [])


@pytest.mark.parametrize("number", ["4111 1111 1111 1112", "378282246310006"])
def test_card_numbers_failing_luhn_are_not_cards(number: str) -> None:
    assert not luhn_ok(number.replace(" ", ""))
    assert T.CREDIT_CARD not in found(f"card {number} expires")


def test_luhn_accepts_every_common_length() -> None:
    for number in ("4222222222222", "30569309025904", "378282246310005",
                   "5555555555554444", "6011000990139424", "6250941006528599",
                   "4111111111111111110"):
        assert luhn_ok(number), number
        assert T.CREDIT_CARD in found(f"card {number} here")


def test_iban_checksum_and_length_are_enforced() -> None:
    assert iban_ok("GB82WEST12345698765432")
    assert not iban_ok("GB82WEST12345698765433")  # mod-97 fails
    assert not iban_ok("GB82WEST1234569876543")  # wrong length for GB
    assert T.IBAN not in found("IBAN GB82 WEST 1234 5698 7654 33 please")


def test_invalid_ssn_areas_are_rejected() -> None:
    assert T.SSN not in found("ref 000-12-3456 and 666-12-3456")


def test_thresholds_are_per_type() -> None:
    text = "ring 555 0134 tonight"  # a phone number with no context word
    assert T.PHONE in found(text)
    strict = dataclasses.replace(
        mist.DEFAULT_CONFIG, thresholds={**mist.DEFAULT_CONFIG.thresholds, T.PHONE: 0.99}
    )
    assert all(e.type is not T.PHONE for e in mist.analyze(text, strict).entities)
    assert any(e.type is T.DATE for e in mist.analyze("due Monday", strict).entities)


def test_levels_follow_what_was_found() -> None:
    assert mist.analyze("What are common diabetes complications?").level <= Level.INTERNAL
    assert mist.analyze("What is the capital of France?").level <= Level.INTERNAL
    assert mist.analyze("Email me at bob@example.com").level is Level.CONFIDENTIAL
    restricted = mist.analyze("John Carter, MRN 4471902, has type 2 diabetes")
    assert restricted.level is Level.RESTRICTED
    assert restricted.sensitivity >= 0.75
    assert mist.analyze("").level is Level.PUBLIC


def test_eponyms_are_conditions_not_people() -> None:
    kinds = found("positive Babinski sign and Crohn's disease in a 40-year-old")
    assert T.PERSON not in kinds
    assert T.MEDICAL_CONDITION in kinds


def test_reasons_count_types() -> None:
    a = mist.analyze("mail a@b.io or c@d.io, born 1990-01-02")
    assert dict(a.reasons)[T.EMAIL] == 2
    assert a.reasons == tuple(sorted(a.reasons, key=lambda r: r.type.value))


def test_trust_boundary() -> None:
    assert mist.needs_sanitization(1.0, 0.4)
    assert not mist.needs_sanitization(1.0, 1.0)  # personal group
    assert not mist.needs_sanitization(0.5, 0.9)
    with pytest.raises(mist.MistError):
        mist.needs_sanitization(1.5, 0.2)


def test_second_stage_can_only_raise_the_level() -> None:
    class Strict:
        def classify(self, text: str, first_stage: Level) -> Level:
            return Level.RESTRICTED

    class Lax:
        def classify(self, text: str, first_stage: Level) -> Level:
            return Level.PUBLIC

    text = "Email me at bob@example.com"
    raised = mist.analyze(text, mist.MistConfig(second_stage=Strict()))
    assert raised.level is Level.RESTRICTED and raised.sensitivity >= 0.75
    assert mist.analyze(text, mist.MistConfig(second_stage=Lax())).level is Level.CONFIDENTIAL


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("taken at GPS 47.12774, 8.01489 yesterday", "47.12774, 8.01489"),
        ("we met at 47.3769° N, 8.5417° E.", "47.3769° N, 8.5417° E"),
        ("waypoint -33.8688 151.2093 reached", "-33.8688 151.2093"),
        ("lat 47.3769 lon 8.5417", "47.3769 lon 8.5417"),
        ("summit at 40°26'46\"N 79°58'56\"W today", "40°26'46\"N 79°58'56\"W"),
        ("camp 46° 33.5′ N, 7° 58.9′ E tonight", "46° 33.5′ N, 7° 58.9′ E"),
    ],
)
def test_gps_coordinates_are_found_whole(text: str, value: str) -> None:
    assert value in found(text).get(T.GPS_COORDINATES, [])
    assert mist.analyze(text).level >= Level.CONFIDENTIAL


@pytest.mark.parametrize(
    "text",
    [
        "the ratio went from 0.5, 1.2 to 3.4",
        "supports Python 3.11, 3.12 and 3.13",
        "build 1.2.47.3769 8.5417 failed",  # inside a version number
        "GPS 95.12345, 8.01489 is out of range",  # no latitude above 90
        "values 12.345 67.891 in the table",  # three decimals and no context: too weak
    ],
)
def test_number_pairs_that_are_not_positions_are_not_gps(text: str) -> None:
    assert T.GPS_COORDINATES not in found(text)


def test_a_bare_precise_pair_is_a_weak_position() -> None:
    analysis = mist.analyze("see 47.37691, 8.54172 for the spot")
    assert [e.type for e in analysis.entities] == [T.GPS_COORDINATES]
    assert analysis.level is Level.INTERNAL  # no context word or hemisphere: not confidential


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("precedent for our client (matter 47-8710) in the dispute", "47-8710"),
        ("see case no. 2023-CV-0042 for details", "2023-CV-0042"),
        ("Docket No. 1:21-cv-01234 was filed", "1:21-cv-01234"),
        ("in the matter of 2019/00123 before the court", "2019/00123"),
        ("Cause # 482913 was dismissed", "482913"),
    ],
)
def test_legal_matter_numbers_in_context_are_found(text: str, value: str) -> None:
    assert value in found(text).get(T.CASE_NUMBER, [])


@pytest.mark.parametrize(
    "text",
    [
        "it matters 12-3456 ways",  # not the word "matter"
        "no matter 2023 was a good year",  # four digits and no separator
        "in case 3 of 5 fails",
        "a showcase 47-8710 of work",  # not at a word start
    ],
)
def test_numbers_near_legal_words_are_not_always_case_numbers(text: str) -> None:
    assert T.CASE_NUMBER not in found(text)


def test_positions_and_matters_are_replaced_by_typed_placeholders() -> None:
    text = "Client matter 47-8710: photo at GPS 47.12774, 8.01489."
    out = mist.sanitize(text, mist.Vault(random.Random(0))).text
    assert "47-8710" not in out and "47.12774" not in out and "8.01489" not in out
    assert "[CASE_NUMBER_" in out and "[GPS_COORDINATES_" in out
