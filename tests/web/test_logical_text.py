# ruff: noqa: RUF001 - Arabic and Burmese letters and digits are the point of these tests
"""The test-side reader of PDF text (tests/support/logical_text.py) puts drawn glyphs back in
the order they were typed, on known words, so the PDF tests cannot pass by accident."""

from __future__ import annotations

import pytest

from tests.support.logical_text import reading_order


@pytest.mark.parametrize(
    ("drawn", "typed"),
    [
        # Burmese: vowel sign E and medial ra are drawn before their consonant
        (["ေ", "ြ", "က", "ည", "ာ", "ခ", "ျ", "က", "်"], "ကြေညာချက်"),
        (["ေ", "ြ", "မ", "ပ", "ံ", "ု"], "မြေပုံ"),
        (["ေ", "က", "ာ", "င", "်", "း"], "ကောင်း"),
        (["ရ", "န", "်", "က", "ု", "န", "်"], "ရန်ကုန်"),
        (["၂", "၀", "၂", "၆"], "၂၀၂၆"),
        # Arabic: drawn left to right, numbers keep their own order
        (["١", "٤", "-", "ق", "/", "٢", "٠", "٢", "٦", "/", "ع", "ج", "ر", "م"], "مرجع/٢٠٢٦/ق-١٤"),
        (["ب", "ر", "ح", "ل", "ا", " ", "م", "ئ", "ا", "ر", "ج"], "جرائم الحرب"),
        (["لا"], "لا"),  # a ligature's text stays whole
        # Latin around them is left as drawn
        (["R", "e", "f", ":", " ", "ب", "ا"], "Ref: اب"),
    ],
)
def test_drawn_glyphs_read_back_as_typed(drawn: list[str], typed: str) -> None:
    assert reading_order(drawn) == typed


def test_glyph_order_is_not_taken_for_typed_order() -> None:
    """Without reordering, the drawn order is another string: the reader does real work."""
    drawn = ["ေ", "ြ", "က"]
    assert "".join(drawn) != "ကြေ"
    assert reading_order(drawn) == "ကြေ"
