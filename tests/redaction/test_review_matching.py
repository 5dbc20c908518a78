"""What the security review of issue 14 found the matcher missed: partial names around a
particle, numbers written with other punctuation, Burmese names without their honorific, Latin
accents. Examples, then properties (hypothesis), then through real files.

Every name and number here is fictional."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pdfminer.high_level import extract_text

from portal.redaction.leakcheck import check_files
from portal.redaction.matcher import Matcher
from portal.redaction.names import is_particle, partial_names
from portal.redaction.normalise import _is_zawgyi, fold
from portal.redaction.renditions import MarkSpec, redact


def found(term: str, text: str) -> bool:
    """Whether ``term`` is found in ``text``, and where it is, the span folds to something."""
    matcher = Matcher([("P-1", term), ("P-2", "Unrelated Veldorgor Name")])
    hits = [hit for hit in matcher.locate(text) if hit.code == "P-1"]
    in_text = "P-1" in matcher.codes_in_text(text)
    assert in_text == bool(hits), (text, hits)
    assert all(fold(text[hit.start : hit.end]) for hit in hits)
    return in_text


# --- 1. partial names around a particle -------------------------------------------------------


def test_partial_names_keep_the_particles_between_two_names() -> None:
    assert partial_names("Abu Bakor Al Vaghdari") == ["Bakor Al Vaghdari"]
    assert partial_names("Mohamir bin Salvan Al Saur") == ["Mohamir bin Salvan", "Salvan Al Saur"]
    assert found("Mohamir bin Salvan Al Saur", "The report names Salvan al-Saur twice.")
    assert found("Abu Bakor Al Vaghdari", "BAKOR AL VAGHDARI was seen.")
    # A particle alone, or with one name, never counts.
    assert partial_names("Abu Bakor") == []
    assert not found("Abu Bakor Al Vaghdari", "Abu Bakor was seen, and Al Vaghdari.")
    assert not found("Mohamir bin Salvan Al Saur", "bin Salvan; Al Saur")


NAME_TOKENS = ["Kalo", "Tanzu", "Veldor", "Mirqua", "Bexpho", "Gorret"]
PARTICLES = ["Al", "bin", "Abu", "Daw", "U", "El", "ibn"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(NAME_TOKENS), st.sampled_from(PARTICLES)),
        min_size=2,
        max_size=7,
    )
)
def test_property_partial_names_are_two_names_and_the_particles_between(
    tokens: list[str],
) -> None:
    name = " ".join(tokens)
    names = [index for index, token in enumerate(tokens) if not is_particle(token)]
    expected = [
        " ".join(tokens[first : last + 1])
        for first, last in pairwise(names)
        if last - first + 1 < len(tokens)
    ]
    partials = partial_names(name)
    assert partials == expected
    for partial in partials:
        parts = partial.split()
        assert sum(not is_particle(part) for part in parts) == 2
        assert not is_particle(parts[0]) and not is_particle(parts[-1])


# --- 2. numbers --------------------------------------------------------------------------------


def test_a_number_is_found_whatever_its_punctuation() -> None:
    phone = "+679 555 0199"
    for written in (
        "679 555 0199",
        "(+679) 555-0199",
        "+679.555.0199",
        "+679/555/0199",
        "00679 555 0199",
        "tel:+6795550199;",
    ):
        assert found(phone, f"Call {written} today."), written
    assert found("00679 555 0199", "Call +679 555 0199.")
    # Other digits are not the number.
    assert not found(phone, "Call 679 555 0198 or 555 0199.")


DIGIT_SEPARATORS = ["", " ", "-", ".", "/", "(", ")", " - "]


@st.composite
def written_number(draw: st.DrawFn, digits: str) -> str:
    """``digits`` with random punctuation between groups and an optional country prefix."""
    out = draw(st.sampled_from(["", "+", "00", "(+", "+ "]))
    for digit in digits:
        out += digit
        if draw(st.integers(0, 3)) == 0:
            out += draw(st.sampled_from(DIGIT_SEPARATORS))
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data(), digits=st.text("0123456789", min_size=7, max_size=12))
def test_property_a_number_written_two_ways_is_found(data: st.DataObject, digits: str) -> None:
    registered = data.draw(written_number(digits))
    written = data.draw(written_number(digits))
    assert found(registered, f"see {written} here")


# --- 3. Burmese honorifics ----------------------------------------------------------------------


def test_a_burmese_name_is_found_without_its_honorific() -> None:
    registered = "ဒေါ်နန်းသီရိ"
    assert partial_names(registered) == ["နန်းသီရိ"]
    assert found(registered, "သူမ နန်းသီရိ ပါ")
    assert found(registered, "မနန်းသီရိ ပါ")
    assert found(registered, "ဒေါ် နန်းသီရိ")
    # One syllable left: not searched on its own.
    assert partial_names("ဒေါ်နန်း") == []
    # A name that only begins with the letter of an honorific keeps its first syllable.
    assert partial_names("မြသန္တာ") == []
    assert partial_names("မောင်ခင်လင်း") == ["ခင်လင်း"]


HONORIFICS = ["ဦး", "ဒေါ်", "မ", "ကို", "မောင်", "စော", "နော်"]
BURMESE_SYLLABLES = ["နန်း", "သီ", "ရိ", "ခင်", "ကြည်", "ဇော်", "ထွန်း", "လင်း", "စိုး", "ဖြူ"]


@settings(max_examples=100, deadline=None)
@given(
    registered_as=st.sampled_from(HONORIFICS),
    written_as=st.sampled_from(["", *HONORIFICS]),
    syllables=st.lists(st.sampled_from(BURMESE_SYLLABLES), min_size=2, max_size=4),
    space=st.booleans(),
)
def test_property_a_burmese_name_is_found_with_any_or_no_honorific(
    registered_as: str, written_as: str, syllables: list[str], space: bool
) -> None:
    bare = "".join(syllables)
    registered = f"{registered_as}{' ' if space else ''}{bare}"
    assert found(registered, f"အမည် {written_as}{bare} ။")


# --- 4. Latin accents -------------------------------------------------------------------------


def test_latin_accents_are_ignored_by_the_matcher() -> None:
    assert found("José Ramírez López", "Jose Ramirez was there.")
    assert found("Jose Ramirez", "JOSÉ RAMÍREZ was there.")
    assert found("Jose Ramirez", "Jose\u0301 Rami\u0301rez")  # decomposed
    assert found("Ζωή Παπαδοπούλου", "ΖΩΗ ΠΑΠΑΔΟΠΟΥΛΟΥ")  # Greek
    assert found("Алёна Пётрова", "Алена Петрова")  # Cyrillic
    # The hit runs from the first letter to the last (a separate accent after the last letter
    # may belong to the text that follows).
    matcher = Matcher([("P-1", "Jose Ramirez")])
    text = "by Jose\u0301 Rami\u0301rez\u0301."
    assert [text[hit.start : hit.end] for hit in matcher.locate(text)] == [text[3:-2]]


ACCENTS = {"a": "áàâäã", "e": "éèêë", "i": "íìîï", "o": "óòôöõ", "u": "úùûü", "n": "ñ", "c": "ç"}


@st.composite
def accented(draw: st.DrawFn, name: str) -> str:
    return "".join(
        draw(st.sampled_from(ACCENTS[char])) if char in ACCENTS and draw(st.booleans()) else char
        for char in name
    )


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    tokens=st.lists(
        st.sampled_from([*NAME_TOKENS, "Ramon", "Lucia", "Inez"]),
        min_size=2,
        max_size=3,
        unique=True,
    ),
)
def test_property_accents_on_either_side_do_not_hide_a_name(
    data: st.DataObject, tokens: list[str]
) -> None:
    name = " ".join(tokens)
    registered = data.draw(accented(name))
    written = data.draw(accented(name))
    assert found(registered, f"The witness {written.upper()} said so.")


# --- 5. the Zawgyi detector's cache -------------------------------------------------------------


def test_the_zawgyi_verdict_is_cached() -> None:
    assert _is_zawgyi.cache_info().maxsize is not None  # bounded
    fold("ကြည်လင်း ဇော်")
    hits = _is_zawgyi.cache_info().hits
    fold("ကြည်လင်း ဇော်")
    assert _is_zawgyi.cache_info().hits > hits


# --- through real files --------------------------------------------------------------------------


def term(code: str, text: str) -> MarkSpec:
    return MarkSpec(code=code, kind="term", reason="protects a witness", term=text)


def test_a_text_is_redacted_of_a_number_and_an_unaccented_partial_name(tmp_path: Path) -> None:
    source = tmp_path / "statement.txt"
    source.write_text(
        "Statement of Jose Ramirez, reached on (+679) 555-0199.\n"
        "Salvan al-Saur confirmed. The year 2024 and 555 alone are not the number.\n",
        encoding="utf-8",
    )
    marks = [
        term("T1", "José Ramírez López"),
        term("T2", "+679 555 0199"),
        term("T3", "Mohamir bin Salvan Al Saur"),
    ]
    dest = tmp_path / "statement.pdf"
    outcome = redact(source, "text/plain", marks, dest)
    assert {mark.code: mark.occurrences for mark in outcome.applied} == {"T1": 1, "T2": 1, "T3": 1}
    extracted = fold(extract_text(str(dest)))
    for gone in ("joseramirez", "5550199", "salvanalsaur"):
        assert gone not in extracted
    assert "theyear2024and555alone" in extracted
    assert check_files([("data/statement.pdf", dest)], outcome.protected_terms).clean
    report = check_files([("statement.txt", source)], outcome.protected_terms)
    assert {hit.mark_code for hit in report.hits} == {"T1", "T2", "T3"}
