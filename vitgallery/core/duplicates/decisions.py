"""A user's decisions about groups and pairs, kept in the library.

- A whole group "not duplicates" or "keep all": stored by the multiset of its members' fingerprints,
  it stays hidden until one of its members changes or a new photo joins it (DuplicateScan.is_decided).
- The photos kept of a group, where the user chose other ones than the rule: stored by the group's key,
  they hold while the group is the same photos (chosen_keeps), so a restart or a new scan keeps them.
- Photos separated from others ("these two are not duplicates", a photo taken out of its group, a
  group split in two): stored as pairs of fingerprints, never linked again while their content is
  unchanged; every other link stays, so the rest of the group is still shown (DuplicateScan.groups).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vitgallery.core.duplicates.groups import DuplicateGroup, DuplicateMember, fingerprint_pair
from vitgallery.core.store import DecisionRow, Store

DECISIONS = ("not_duplicates", "keep_all")


@dataclass(frozen=True)
class Decision:
    """What one decision added to the library, so that it can be taken back (`take_back`)."""

    group_keys: tuple[str, ...] = ()
    pairs: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class UserDecisions:
    """Everything the user decided, as a scan applies it (DuplicateScan.decisions and .separated)."""

    groups: list[DecisionRow]
    separated: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Separation:
    """Photos the user told apart in one step (a pair, a photo taken out, a group split), for a later
    session to list and take back: `photos` were told apart from `others` (relative paths; a photo no
    longer in the library is left out)."""

    pairs: frozenset[tuple[str, str]]
    at: float
    photos: tuple[str, ...]
    others: tuple[str, ...]


def separations(store: Store) -> list[Separation]:
    """Every separation kept in the library, newest first."""
    by_time: dict[float, set[tuple[str, str]]] = {}
    for first, second, at in store.separated_pairs_saved():
        by_time.setdefault(at, set()).add((first, second))
    paths = store.paths_by_fingerprint(f for pairs in by_time.values() for pair in pairs for f in pair)
    found = []
    for at, pairs in sorted(by_time.items(), reverse=True):
        # the photo in most pairs is on one side; its partners are the other side
        counts: dict[str, int] = {}
        for pair in pairs:
            for f in pair:
                counts[f] = counts.get(f, 0) + 1
        most = max(sorted(counts), key=counts.__getitem__)
        others = {b if a == most else a for a, b in pairs if most in (a, b)}
        photos = set(counts) - others
        found.append(Separation(frozenset(pairs), at, tuple(sorted(paths[f] for f in photos if f in paths)),
                                tuple(sorted(paths[f] for f in others if f in paths))))
    return found


def decide(store: Store, group: DuplicateGroup, decision: str) -> Decision:
    """Remember that a group is not duplicates, or is to be kept whole; it stays hidden until it changes."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    store.save_decision(group.key, group.fingerprints, [str(m.path) for m in group.members], decision)
    return Decision(group_keys=(group.key,))


def separate(store: Store, first: Iterable[DuplicateMember], second: Iterable[DuplicateMember]) -> Decision:
    """Remember that no photo of `first` is a duplicate of any photo of `second`."""
    second = list(second)
    pairs = {fingerprint_pair(a.fingerprint, b.fingerprint) for a in first for b in second
             if a.fingerprint != b.fingerprint}  # byte-identical copies are duplicates whatever is said
    new = frozenset(pairs - store.separated_pairs())  # taking this back leaves what was said before
    store.save_separated_pairs(new)
    return Decision(pairs=new)


def take_back(store: Store, decision: Decision) -> None:
    """Forget what a decision added: its groups and photos are linked again as the scan found them."""
    store.forget_decisions(decision.group_keys)
    store.forget_separated_pairs(decision.pairs)


def load_decisions(store: Store) -> UserDecisions:
    return UserDecisions(store.decisions(), frozenset(store.separated_pairs()))


def remember_keep(store: Store, group: DuplicateGroup, keep: Iterable[Path] | None) -> None:
    """Remember the photos the user keeps of a group (None: what the rule keeps, again)."""
    store.save_keep_choice(group.key, None if keep is None else [str(path) for path in keep])


def chosen_keeps(store: Store, groups: Iterable[DuplicateGroup]) -> dict[str, frozenset[Path]]:
    """Group key -> the photos the user chose to keep, for those of `groups` chosen in, whose photos are
    all still members (one renamed since: the rule chooses again)."""
    stored = store.keep_choices()
    chosen = {}
    for group in groups:
        paths = stored.get(group.key)
        if paths:
            keep = frozenset(Path(path) for path in paths)
            if keep <= {m.path for m in group.members}:
                chosen[group.key] = keep
    return chosen
