"""Variants of a name and the one-automaton matcher: examples, then properties (hypothesis) —
a registered name hidden with any mix of the transformations a reader sees through, inside
random text, is found; text that shares only one token of the name is not.

Every name here is fictional (made of invented syllables or random letters)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from portal.redaction.matcher import MIN_TERM_LENGTH, Hit, Matcher, TermTooShort, expand
from portal.redaction.names import is_particle, partial_names, variants
from portal.redaction.normalise import fold, normalise, to_zawgyi

BURMESE = "ဒေါ်မြသန္တာဦး"  # fictional; "Daw Mya Thandar U" in Burmese letters
ARABIC = "كالوم تانزو الفيرد"  # fictional three-part name in Arabic letters


# --- variants --------------------------------------------------------------------------------


def test_partial_names_are_consecutive_pairs_without_particles() -> None:
    assert variants("Mya Sandar Oo") == ["Mya Sandar Oo", "Mya Sandar", "Sandar Oo"]
    assert variants("Daw Mya Sandar Oo") == ["Daw Mya Sandar Oo", "Mya Sandar", "Sandar Oo"]
    assert variants("U Mya Sandar") == ["U Mya Sandar", "Mya Sandar"]
    # Two tokens: the name only. A particle on either side: no pair.
    assert variants("Mya Sandar") == ["Mya Sandar"]
    # Two names with a particle between them count, the particle kept in the searched form.
    assert partial_names("Abu Kalo Al Tanzu") == ["Kalo Al Tanzu"]
    assert partial_names("Kalo bin Tanzu Veldor") == ["Kalo bin Tanzu", "Tanzu Veldor"]


def test_arabic_names_split_and_arabic_particles_count() -> None:
    assert partial_names(ARABIC) == ["كالوم تانزو", "تانزو الفيرد"]
    with_particle = "عبد كالوم تانزو"
    assert partial_names(with_particle) == ["كالوم تانزو"]
    assert is_particle("أبو") and is_particle("ابو")  # compared normalised
    assert is_particle("DAW") and is_particle("bint") and not is_particle("Sandar")


def test_burmese_and_non_names_are_searched_whole() -> None:
    # Whole, and without a leading honorific (ဒေါ် = Daw) when two syllables or more remain.
    assert variants(BURMESE) == [BURMESE, "မြသန္တာဦး"]
    assert variants("ဒေါ် မြ သန္တာ") == ["ဒေါ် မြ သန္တာ", "မြ သန္တာ"]  # even written with spaces
    assert variants("12 Olive Street") == ["12 Olive Street"]
    assert variants("+95 9 123 456 789") == ["+95 9 123 456 789"]


def test_aliases_are_searched_as_given_and_split_like_names() -> None:
    found = variants("Kalo Tanzu", ["Kalomir Tan Veldor", BURMESE])
    assert found == [
        "Kalo Tanzu",
        "Kalomir Tan Veldor",
        BURMESE,
        "Kalomir Tan",
        "Tan Veldor",
        "မြသန္တာဦး",
    ]


def test_the_particle_list_is_data() -> None:
    from importlib import resources

    data = resources.files("portal.redaction").joinpath("data/name_particles.txt")
    lines = [line.strip() for line in data.read_text(encoding="utf-8").splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    for expected in ("U", "Daw", "Ma", "Ko", "Maung", "Saw", "Naw", "Abu", "Umm", "Abd", "bin"):
        assert expected in entries
    assert {"عبد", "ال"} <= set(entries)
    assert all(is_particle(entry) for entry in entries)


# --- the matcher -----------------------------------------------------------------------------


def codes(matcher: Matcher, text: str) -> set[str]:
    return matcher.codes_in_text(text)


def test_a_partial_name_is_found_and_maps_back() -> None:
    matcher = Matcher([("P-1", "Daw Mya Sandar Oo")])
    text = "Page two says MYA\nSAN-\ndar was there; Daw Mya left."
    hits = matcher.locate(text)
    assert [(hit.code, text[hit.start : hit.end]) for hit in hits] == [("P-1", "MYA\nSAN-\ndar")]
    assert codes(matcher, "Daw Mya and Oo") == set()


def test_the_whole_name_is_one_place_not_three() -> None:
    matcher = Matcher([("P-1", "Mya Sandar Oo")])
    text = "Mya Sandar Oo; later Sandar Oo."
    hits = matcher.locate(text)
    assert [text[hit.start : hit.end] for hit in hits] == ["Mya Sandar Oo", "Sandar Oo"]


def test_overlapping_occurrences_each_count() -> None:
    matcher = Matcher([("T1", "aba")])
    assert matcher.find("ababa") == [Hit(0, 3, "T1"), Hit(2, 5, "T1")]


def test_one_variant_can_belong_to_many_codes() -> None:
    matcher = Matcher([("P-1", "Kalo Tanzu"), ("P-2", "kalo  tanzu"), ("P-3", "Veldor")])
    assert matcher.find(fold("x KALO TANZU y")) == [Hit(1, 10, "P-1"), Hit(1, 10, "P-2")]
    assert matcher.codes == frozenset({"P-1", "P-2", "P-3"})


def test_arabic_with_marks_tatweel_and_alef_forms_is_found() -> None:
    matcher = Matcher([("P-4", "أحمد كالوم")])
    disguised = "اَحْمَـــد كـالُوم"
    assert codes(matcher, f"شهد {disguised} أمس") == {"P-4"}


def test_arabic_in_visual_order_is_found_with_and_without_lam_alef_ligatures() -> None:
    matcher = Matcher([("P-5", "سلام تانزو")])
    logical = "شهد سلام تانزو أمس"
    assert codes(matcher, logical[::-1]) == {"P-5"}
    # A reversed line whose lam-alef was drawn (and extracted) as the ligature glyph.
    ligature = logical.replace("\u0644\u0627", "\ufefb")[::-1]
    assert "\ufefb" in ligature
    assert codes(matcher, ligature) == {"P-5"}


def test_burmese_in_zawgyi_unicode_and_both_in_one_text() -> None:
    matcher = Matcher([("P-6", BURMESE)])
    zawgyi = to_zawgyi(BURMESE)
    assert zawgyi is not None
    sentence = "သူသည် ရန်ကုန်မြို့တွင် နေထိုင်သည်။"
    for text in (
        BURMESE,
        zawgyi,
        f"{sentence} {zawgyi} {sentence}",
        f"{BURMESE}{zawgyi}",  # one run mixing both encodings
        zawgyi[:3] + "\u200b" + zawgyi[3:],
    ):
        assert codes(matcher, text) == {"P-6"}, text
    mixed = f"{sentence} {zawgyi} / {BURMESE}"
    found = [mixed[hit.start : hit.end] for hit in matcher.locate(mixed)]
    assert found == [zawgyi, BURMESE]


def test_short_terms_are_refused_naming_the_code_never_the_value() -> None:
    for short in ("Xu", "X u", "x\u200bq", "-x-", "  "):
        with pytest.raises(TermTooShort) as refused:
            Matcher([("P-1", "Kalo Tanzu"), ("PI-77", short)])
        assert refused.value.code == "PI-77"
        assert "PI-77" in str(refused.value) and f"at least {MIN_TERM_LENGTH}" in str(refused.value)
        if short.strip():
            assert short not in str(refused.value)


def test_partial_names_too_short_to_search_are_left_out() -> None:
    assert list(expand([("P-1", "Li Xu Kalomir")])) == [
        ("P-1", "Li Xu Kalomir"),
        ("P-1", "Li Xu"),
        ("P-1", "Xu Kalomir"),
    ]
    assert list(expand([("P-2", "A B Kalomir")])) == [
        ("P-2", "A B Kalomir"),
        ("P-2", "B Kalomir"),
    ]


def test_no_terms_find_nothing() -> None:
    matcher = Matcher([])
    assert matcher.find("anything") == [] and matcher.locate("x") == []
    assert matcher.codes_in_text("anything") == set()


def test_many_identifiers_are_one_automaton() -> None:
    terms = [(f"PI-{number}", f"Kalo{number:05d} Tanzu") for number in range(5000)]
    matcher = Matcher(terms)
    text = "x " * 1000 + "KALO04321\ntanzu and kalo00007 tanzu" + " y" * 1000
    assert [hit.code for hit in matcher.locate(text)] == ["PI-4321", "PI-7"]


# --- properties ------------------------------------------------------------------------------

SYLLABLES = ["ka", "lo", "mir", "tan", "zu", "vel", "dor", "ret", "qua", "bex", "pho", "gor"]
LATIN_TOKEN = st.lists(st.sampled_from(SYLLABLES), min_size=2, max_size=3).map(
    lambda parts: "".join(parts).capitalize()
)
ARABIC_LETTERS = "بتثجحخدذرزسشصضطظعغفقكلمنهويا"
ARABIC_TOKEN = st.text(ARABIC_LETTERS, min_size=3, max_size=6)
BURMESE_SYLLABLES = ["မြ", "သန္တာ", "ခင်", "ကြည်", "ဇော်", "ထွန်း", "လင်း", "စိုး", "နွယ်", "ဖြူ"]
BURMESE_SENTENCE = "သူသည် ရန်ကုန်မြို့တွင် နေထိုင်သည်။"

SEPARATORS = [" ", "  ", "\n", " \r\n ", "\t", "\u00a0", "\u2003", "\u3000"]
INVISIBLE = ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
BIDI = ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2069"]
HARAKAT = [chr(code) for code in range(0x064B, 0x0653)] + ["\u0670"]
# alef -> alef, with hamza above / below, with madda, wasla; ha -> ta marbuta;
# ya -> alef maqsura, ya with hamza; waw -> waw with hamza
ALEF_FORMS = {
    "\u0627": "\u0627\u0623\u0625\u0622\u0671",
    "\u0647": "\u0647\u0629",
    "\u064a": "\u064a\u0649\u0626",
    "\u0648": "\u0648\u0624",
}

# Any text at all around the name (for Burmese names: no Myanmar letters right beside it).
SURROUNDING = st.text(max_size=40)
NOT_MYANMAR = st.text(
    st.characters(exclude_categories=["Cs"]).filter(lambda char: not "\u1000" <= char <= "\u109f"),
    max_size=30,
)
# Text that cannot contribute a letter of any fictional name here.
FOREIGN = st.text(
    st.sampled_from(
        list(" \n.,;:!?()0123456789\u03b1\u03b2\u03b3\u03b4\u03b5\u03b6") + INVISIBLE + BIDI + ["-"]
    ),
    max_size=30,
)


def _names(token: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(token, min_size=2, max_size=4, unique_by=fold).filter(
        lambda tokens: not any(is_particle(part) for part in tokens)
    )


def _some_tokens(draw: st.DrawFn, tokens: list[str]) -> list[str]:
    """The whole name, or (for three tokens or more) two consecutive ones."""
    if len(tokens) >= 3 and draw(st.booleans()):
        first = draw(st.integers(0, len(tokens) - 2))
        return tokens[first : first + 2]
    return tokens


def _sprinkle(draw: st.DrawFn, text: str, pool: list[str]) -> str:
    """``text`` with characters of ``pool`` inserted after some of its characters."""
    out = []
    for char in text:
        out.append(char)
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(pool)))
    return "".join(out)


def _join(draw: st.DrawFn, tokens: list[str]) -> str:
    text = tokens[0]
    for token in tokens[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + token
    return text


@st.composite
def disguised_latin(draw: st.DrawFn, tokens: list[str]) -> str:
    shown = _some_tokens(draw, tokens)
    if draw(st.booleans()):  # hyphenated at a line break inside one token
        index = draw(st.integers(0, len(shown) - 1))
        cut = draw(st.integers(1, len(shown[index]) - 1))
        shown = [*shown]
        shown[index] = shown[index][:cut] + "-\n" + shown[index][cut:]
    text = _join(draw, shown)
    chars = []
    for char in text:
        if char.isalpha():
            char = char.upper() if draw(st.booleans()) else char.lower()
            if draw(st.integers(0, 4)) == 0:  # full-width form (NFKC folds it back)
                char = chr(ord(char) - 0x20 + 0xFF00) if char.isascii() else char
        chars.append(char)
    pool = draw(st.sampled_from([INVISIBLE, BIDI, INVISIBLE + BIDI]))
    return _sprinkle(draw, "".join(chars), pool) if draw(st.booleans()) else "".join(chars)


@st.composite
def disguised_arabic(draw: st.DrawFn, tokens: list[str]) -> str:
    shown = _some_tokens(draw, tokens)
    visual = draw(st.booleans())
    if visual and draw(st.booleans()):  # lam-alef drawn as the ligature glyph
        shown = [token.replace("لا", "\ufefb") for token in shown]
    chars = []
    for char in _join(draw, shown):
        forms = ALEF_FORMS.get(char)
        chars.append(draw(st.sampled_from(forms)) if forms else char)
    text = "".join(chars)
    if draw(st.booleans()):
        text = _sprinkle(draw, text, HARAKAT)
    if draw(st.booleans()):
        text = _sprinkle(draw, text, ["\u0640", "\u0640\u0640"])  # tatweel
    if draw(st.booleans()):
        text = _sprinkle(draw, text, INVISIBLE + BIDI)
    return text[::-1] if visual else text


@settings(max_examples=150, deadline=None)
@given(data=st.data(), tokens=_names(LATIN_TOKEN), before=SURROUNDING, after=SURROUNDING)
def test_property_a_disguised_latin_name_is_found(
    data: st.DataObject, tokens: list[str], before: str, after: str
) -> None:
    hidden = data.draw(disguised_latin(tokens))
    _assert_found(" ".join(tokens), before, hidden, after)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), tokens=_names(ARABIC_TOKEN), before=SURROUNDING, after=SURROUNDING)
def test_property_a_disguised_arabic_name_is_found(
    data: st.DataObject, tokens: list[str], before: str, after: str
) -> None:
    hidden = data.draw(disguised_arabic(tokens))
    _assert_found(" ".join(tokens), before, hidden, after)


@settings(max_examples=60, deadline=None)
@given(
    syllables=st.lists(st.sampled_from(BURMESE_SYLLABLES), min_size=2, max_size=4),
    zawgyi=st.booleans(),
    split=st.booleans(),
    beside_unicode=st.sampled_from([None, " ", ""]),
    before=NOT_MYANMAR,
    after=NOT_MYANMAR,
)
def test_property_a_burmese_name_is_found_in_unicode_or_zawgyi(
    syllables: list[str],
    zawgyi: bool,
    split: bool,
    beside_unicode: str | None,
    before: str,
    after: str,
) -> None:
    name = "".join(syllables)
    parts = [to_zawgyi(part) if zawgyi else part for part in syllables]
    assert all(parts)
    joiner = "\u200b" if split else ""  # a zero-width space between syllables
    hidden = joiner.join(part or "" for part in parts)
    if beside_unicode is not None:  # Unicode Burmese beside the name: mixed in one text, and
        # with no space between, in one run (which the detector judges as a whole)
        unicode = BURMESE_SENTENCE if beside_unicode else BURMESE_SENTENCE.replace(" ", "") * 3
        before = f"{before}{unicode}{beside_unicode}"
        after = f"{beside_unicode}{unicode}{after}"
    _assert_found(name, before, hidden, after)


def _assert_found(name: str, before: str, hidden: str, after: str) -> None:
    matcher = Matcher([("P-1", name), ("P-2", "Unrelated Veldorgor Name")])
    text = before + hidden + after
    assert "P-1" in matcher.codes_in_text(text)
    hits = [hit for hit in matcher.locate(text) if hit.code == "P-1"]
    # Some hit lies within the hidden name; mapped back, it is text that folds to a form of it.
    inside = [hit for hit in hits if len(before) <= hit.start and hit.end <= len(text) - len(after)]
    assert inside, (text, hits)
    assert all(fold(text[hit.start : hit.end]) for hit in inside)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    tokens=st.one_of(_names(LATIN_TOKEN), _names(ARABIC_TOKEN)),
    before=FOREIGN,
    after=FOREIGN,
    reverse=st.booleans(),
)
def test_property_one_shared_token_is_not_the_name(
    data: st.DataObject, tokens: list[str], before: str, after: str, reverse: bool
) -> None:
    name = " ".join(tokens)
    matcher = Matcher([("P-1", name)])
    token = data.draw(st.sampled_from(tokens))
    shown = token[::-1] if reverse else token
    folded_token = fold(token)
    # A token that happens to contain two others written together is not "one token" here.
    for pair in pairwise(tokens):
        joined = fold("".join(pair))
        assume(joined not in folded_token and joined[::-1] not in folded_token)
    text = f"{before}{shown.upper()}{after}"
    assert matcher.codes_in_text(text) == set()
    assert matcher.locate(text) == []


def test_normalised_hits_and_located_hits_agree() -> None:
    matcher = Matcher([("P-1", "Kalo Tanzu Veldor")])
    text = "A note: kalo\u00ad TANZU, then tanzu-\nveldor."
    normalised = normalise(text)
    mapped = [normalised.source_span(hit.start, hit.end) for hit in matcher.find(normalised.text)]
    assert mapped == [(hit.start, hit.end) for hit in matcher.locate(text)]
    assert [text[start:end] for start, end in mapped] == ["kalo\u00ad TANZU", "tanzu-\nveldor"]
