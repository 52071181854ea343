from pathlib import Path

from vitgallery.core.words import count_text, size_text, unreadable_text


def test_counts_read_as_words():
    assert [count_text(n, "photo") for n in (1, 2, 12000)] == ["1 photo", "2 photos", "12,000 photos"]


def test_unreadable_photos_are_named_the_first_few_then_counted():
    problems = [(Path(f"/photos/p{n}.jpg"), "truncated") for n in range(5)]
    assert unreadable_text([]) == ""
    assert unreadable_text(problems[:1]) == "1 photo could not be read: p0.jpg (truncated)."
    assert unreadable_text(problems) == ("5 photos could not be read: p0.jpg (truncated), p1.jpg (truncated), "
                                         "p2.jpg (truncated) and 2 more.")


def test_sizes_read_in_the_unit_of_their_group_and_never_as_nothing():
    assert size_text(80_000) == "80 kB"
    assert size_text(1_200_000) == "1.2 MB"
    assert size_text(80_000, like=1_200_000) == "0.08 MB"
    assert size_text(4_000, like=1_200_000) == "0.004 MB"
