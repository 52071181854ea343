"""How often the keep-best rule keeps the untouched original of a group of duplicates.

Each `gNNNN` group of a benchmark corpus's dup/ task (../shared/bench/make_corpus.py) is an original,
`gNNNN_0.jpg`, and its edited copies. For every group, as the truth gives it, the members are analysed
and matched pairwise as a scan would (features.analyse_photo, match_photos, quality.measure_quality),
then each keep rule chooses; the share of groups whose original is kept is printed per rule, and for
the default rule the groups where it is not, with what the rule saw.

Three readings of the default rule: as the files are; with every member given the same date (the
corpus writes each original just before its copies, so "the older" alone would find it); and with the
same date and no JPEG quality read (the corpus saves its originals at quality 92 and its copies at 90,
so the tie-break on the quality a file was saved at would find them too): the last says what the
pixels' signs of an edit do by themselves.

A scan at a high threshold finds parts of these groups, so the rule is also read on every group of
three: the original and two of its copies (their geometry read from those three photos' pairs alone),
each corpus's share printed as "threes".

    python bench/keeper_choice.py /tmp/vg-corpus /tmp/vg-corpus-s2 /tmp/vg-corpus-h3 [--cache DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitgallery.core.duplicates import (  # noqa: E402
    DuplicateMember,
    KeepRule,
    analyse_photo,
    choose_keeper,
    match_photos,
)
from vitgallery.core.duplicates.groups import member_shapes  # noqa: E402
from vitgallery.core.duplicates.keep import edit_signs, quality_score  # noqa: E402
from vitgallery.core.duplicates.pairs import PairTable  # noqa: E402
from vitgallery.core.duplicates.quality import measure_quality  # noqa: E402
from vitgallery.core.duplicates.scoring import PairEvidence  # noqa: E402
from vitgallery.core.imageio import read_meta  # noqa: E402


def group_members(corpus: Path, cache: Path) -> dict[str, tuple[list[DuplicateMember], list[PairEvidence]]]:
    """Every truth group's members as a scan would describe them, without their geometry, and the
    pairs among them with a keypoint map it is read from (cached per corpus)."""
    cached = cache / f"keeper-pairs-{corpus.name}.pkl"
    if cached.exists():
        return pickle.loads(cached.read_bytes())
    truth = json.loads((corpus / "dup" / "truth.json").read_text())
    images = corpus / "dup" / "images"
    groups = {}
    for group, names in truth["groups"].items():
        if len(names) < 2:
            continue  # a distractor
        paths = [images / name for name in names]
        features = [analyse_photo(p) for p in paths]
        mapped = []
        for (i, fa), (j, fb) in itertools.combinations(enumerate(features), 2):
            match = match_photos(fa, fb)
            if match.shape is not None and match.inliers >= 12:
                mapped.append(PairEvidence(i, j, 1.0, match.inliers, match.agreement, 1.0, None, match.shape))
        members = []
        for i, path in enumerate(paths):
            meta, st = read_meta(path), path.stat()
            members.append(DuplicateMember(i, path, st.st_size, st.st_mtime_ns, path.name, meta.width, meta.height,
                                           meta.taken_at, 0.0, quality=measure_quality(path)))
        groups[group] = (members, mapped)
        print(f"  {corpus.name} {group}", file=sys.stderr, end="\r")
    cache.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(pickle.dumps(groups))
    return groups


def with_shapes(members: list[DuplicateMember], pairs: list[PairEvidence]) -> list[DuplicateMember]:
    """The members with their geometry against one another, read from the pairs among them alone."""
    ids = {m.file_id for m in members}
    shapes = member_shapes(PairTable.from_evidence(p for p in pairs if p.a in ids and p.b in ids))
    return [replace(m, shape=shapes.get(m.file_id)) for m in members]


def threes(members: list[DuplicateMember], pairs: list[PairEvidence]) -> list[list[DuplicateMember]]:
    """Every group of the original and two of its copies."""
    original = next(m for m in members if is_original(m))
    copies = [m for m in members if m is not original]
    return [with_shapes([original, *two], pairs) for two in itertools.combinations(copies, 2)]


def is_original(member: DuplicateMember) -> bool:
    return member.path.name.endswith("_0.jpg")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/keeper-choice"),
                        help="where each corpus's analysed groups are kept (delete to measure again)")
    args = parser.parse_args()
    rules = [KeepRule.BEST, KeepRule.RESOLUTION, KeepRule.FILE_SIZE, KeepRule.SHARPEST]
    print(f"{'corpus':16s} {'groups':>6s}  best  same dates  same dates, no JPEG quality  "
          + "  ".join(r.value for r in rules[1:]))
    misses = []
    for corpus in args.corpora:
        groups = group_members(corpus, args.cache)
        kept = dict.fromkeys(rules, 0)
        undated = pixels_only = 0
        three_kept = three_count = 0
        for group, (unshaped, pairs) in groups.items():
            members = with_shapes(unshaped, pairs)
            for rule in rules:
                kept[rule] += is_original(choose_keeper(members, rule).member)
            same_date = [replace(m, mtime_ns=0) for m in members]
            undated += is_original(choose_keeper(same_date, KeepRule.BEST).member)
            bare = [replace(m, quality=replace(m.quality, jpeg_quality=None) if m.quality else None)
                    for m in same_date]
            choice = choose_keeper(bare, KeepRule.BEST)
            pixels_only += is_original(choice.member)
            if not is_original(choice.member):
                misses.append((corpus.name, group, choice, bare))
            for three in threes(unshaped, pairs):
                three_count += 1
                three_kept += is_original(choose_keeper(three, KeepRule.BEST).member)
        n = len(groups)
        print(f"{corpus.name:16s} {n:6d}  {kept[KeepRule.BEST] / n:4.0%}  {undated / n:10.0%}  {pixels_only / n:27.0%}  "
              + "  ".join(f"{kept[r] / n:{len(r.value)}.0%}" for r in rules[1:])
              + f"  threes {three_kept / three_count:.1%} of {three_count}")
    print("\nnot the original, with the same dates and no JPEG quality (kept first):")
    for name, group, choice, members in misses:
        print(f"{name} {group}: {choice.reason}")
        for m in sorted(members, key=lambda m: m is not choice.member):
            q, s = m.quality, m.shape
            print(f"   {m.path.name:32s} {m.width}x{m.height} score {quality_score(m, members):6.2f} "
                  f"signs {','.join(edit_signs(m, members)) or '-':18s} "
                  + ("" if s is None else f"stretch {s.stretch:.2f} tilt {s.tilt:4.1f} pad {s.padding:.2f} ")
                  + ("" if q is None else f"detail {q.fine_detail:.2f} block {q.blockiness:.2f} grey {q.grey:d}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
