from pathlib import Path

from vitgallery.core.words import count_text, unreadable_text


def test_counts_read_as_words():
    assert [count_text(n, "photo") for n in (1, 2, 12000)] == ["1 photo", "2 photos", "12,000 photos"]


def test_unreadable_photos_are_named_the_first_few_then_counted():
    problems = [(Path(f"/photos/p{n}.jpg"), "truncated") for n in range(5)]
    assert unreadable_text([]) == ""
    assert unreadable_text(problems[:1]) == "1 photo could not be read: p0.jpg (truncated)."
    assert unreadable_text(problems) == ("5 photos could not be read: p0.jpg (truncated), p1.jpg (truncated), "
                                         "p2.jpg (truncated) and 2 more.")
