#!/usr/bin/env python3
"""Could the scan skip the mirror image for pairs unlike in the whitened space? How low the whitened
cosine of a true pair goes where only the mirrored keypoints fit a map (issue 18 point 4).

    python bench/lab/mirror_gate.py LIB:CORPUS_DUP [LIB:CORPUS_DUP ...]

LIB is a scanned dup library of the corpus (`bench/retrieval.py --libs`, then `vitgallery duplicates`);
CORPUS_DUP the corpus's dup/ folder (its truth.json). Reads the library only. For every verified pair it
prints the share of pairs under a few whitened cosines (what a gate would skip), then the true pairs whose
best map starts from the mirror image with no direct map as good, lowest whitened cosine first.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vitgallery.core.keypoints import KEYPOINT_COUNT, Keypoints, match_against  # noqa: E402
from vitgallery.core.library import DB_NAME  # noqa: E402

GATES = (0.3, 0.4, 0.5)


def main(pairs: list[str]) -> None:
    for pair in pairs:
        library, corpus = (Path(part) for part in pair.split(":"))
        groups = json.loads((corpus / "truth.json").read_text())["groups"]
        group_of = {name: group for group, names in groups.items() for name in names}
        db = sqlite3.connect(f"file:{library / DB_NAME}?mode=ro", uri=True)
        names = {file_id: Path(path).name for file_id, path in db.execute("select id, path from files")}
        keypoints = {file_id: Keypoints.from_bytes(data).strongest(KEYPOINT_COUNT)
                     for file_id, data in db.execute("select file_id, data from keypoints")}
        rows = db.execute("select a, b, whitened from duplicate_pairs").fetchall()
        cosines = np.array([w for _, _, w in rows])
        by_mirror = []
        for a, b, whitened in rows:
            same = group_of.get(names[a]) is not None and group_of.get(names[a]) == group_of.get(names[b])
            if not same or a not in keypoints or b not in keypoints:
                continue
            direct = match_against(keypoints[a], [keypoints[b]], try_mirror=False)[0]
            best = match_against(keypoints[a], [keypoints[b]])[0]
            if best.mirrored and best.inliers > direct.inliers:
                by_mirror.append((whitened, direct.inliers, best.inliers, names[a], names[b]))
        shares = ", ".join(f"{float((cosines < gate).mean()):.1%} under {gate}" for gate in GATES)
        print(f"{library.name}: {len(rows)} pairs verified ({shares})")
        lost = ", ".join(f"{sum(w < gate for w, *_ in by_mirror)} under {gate}" for gate in GATES)
        print(f"  true pairs only the mirror image maps: {len(by_mirror)} ({lost}); lowest whitened cosines:")
        for whitened, direct, mirrored, a, b in sorted(by_mirror)[:6]:
            print(f"    {whitened:.3f}  {direct} -> {mirrored} inliers  {a}  {b}")


if __name__ == "__main__":
    main(sys.argv[1:])
