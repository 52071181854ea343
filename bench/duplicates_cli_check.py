"""Score what a user gets from `vitgallery duplicates --json` on the benchmark corpora.

For each corpus (made by ../shared/bench/make_corpus.py) the command is run on its dup/ and sem/
libraries (LIBS/<corpus name>-dup and -sem, indexed beforehand, e.g. by bench/duplicates_calibration.py;
the command scans, or reuses the scan kept in the library) at the default threshold and keep rule, and
its groups are scored:

- pair precision and recall of "same group" against dup/truth.json;
- the share of sem images put into any group (no two sem images are duplicates);
- the share of groups holding an original (`gNNNN_0.jpg`, the file no edit touched) that keep it.

    python bench/duplicates_cli_check.py /tmp/vg-corpus /tmp/vg-corpus-s2 /tmp/vg-corpus-h3 --libs /tmp/dup-libs

The command writes its scan into the libraries: pass copies of libraries you share.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def duplicates_json(library: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "vitgallery", "duplicates", "--json", "--library", str(library)],
                          cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def score(corpus: Path, libs: Path) -> dict:
    truth = json.loads((corpus / "dup" / "truth.json").read_text())
    same = {pair for names in truth["groups"].values() for pair in itertools.combinations(sorted(names), 2)}
    groups = duplicates_json(libs / f"{corpus.name}-dup")["groups"]
    together, originals, kept = set(), 0, 0
    for group in groups:
        names = sorted(Path(m["path"]).name for m in group["members"])
        together.update(itertools.combinations(names, 2))
        for member in group["members"]:
            if Path(member["path"]).name.endswith("_0.jpg"):
                originals += 1
                kept += member["keep"]
    sem_groups = duplicates_json(libs / f"{corpus.name}-sem")["groups"]
    sem_total = len(list((corpus / "sem" / "images").iterdir()))
    right = len(together & same)
    return {"precision": right / len(together) if together else 1.0, "recall": right / len(same),
            "groups": len(groups), "sem_grouped": sum(len(g["members"]) for g in sem_groups) / sem_total,
            "originals": originals, "original_kept": kept / originals if originals else 1.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--libs", type=Path, required=True)
    args = parser.parse_args()
    print("corpus             precision  recall  groups  sem grouped  original kept")
    for corpus in args.corpora:
        r = score(corpus, args.libs)
        print(f"{corpus.name:18s} {r['precision']:9.3f}  {r['recall']:6.3f}  {r['groups']:6d}  {r['sem_grouped']:11.3f}"
              f"  {r['original_kept']:.3f} of {r['originals']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
