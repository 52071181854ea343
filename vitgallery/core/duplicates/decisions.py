"""A user's decisions about groups ("not duplicates", "keep all"), kept in the library.

A decision is stored by the multiset of its members' fingerprints: a decided group stays hidden until
one of its members changes or a new photo joins it (DuplicateScan.is_decided).
"""

from __future__ import annotations

from vitgallery.core.duplicates.groups import DuplicateGroup
from vitgallery.core.store import Store

DECISIONS = ("not_duplicates", "keep_all")


def decide(store: Store, group: DuplicateGroup, decision: str) -> None:
    """Remember that a group is not duplicates, or is to be kept whole; it stays hidden until it changes."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    store.save_decision(group.key, group.fingerprints, [str(m.path) for m in group.members], decision)
