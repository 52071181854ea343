"""Near-duplicate groups over a whole library, the copy to keep in each, and the user's decisions.

The pipeline, one module per step:

- `scan`: candidates from the vector index (each photo's nearest neighbours), each pair not verified
  before verified, the evidence kept in the library (`load_scan` gives the last scan at once);
- `features`: what is compared: SIFT keypoints fitted by one affine map (core.keypoints) and the
  aligned pixels' agreement, or, for smooth pictures with too few keypoints, grey levels slid over
  each other; `spill`: the scan's per-photo features, kept in a temporary file beside the library;
- `scoring`: one pair's evidence and its score in [0, 1], which the user's threshold applies to;
  `pairs`: every pair of a scan as columns (PairTable), so that a large library's pairs stay cheap;
- `groups`: the groups at a threshold (a seed photo and the photos that match it) and their members;
- `quality` and `keep`: what the keep-best rule measures in a photo, and which member each rule keeps;
- `decisions`: groups marked "not duplicates" or "keep all", hidden until they change, and photos
  separated from others (a pair, a photo taken out, a group split);
- `actions`: what is done with the photos not kept (to the trash, into a folder, the list exported),
  each declared once in BULK_ACTIONS, logged before files move, undoable; `trash` (the system trash)
  and `moving` (one file moved without replacing anything or leaving half of it) serve them.

A global cosine alone cannot tell duplicates apart: unrelated photos on plain backgrounds sit as close
as a photo and its crop. Keypoints that agree in geometry can.

Import from here: `from vitgallery.core.duplicates import scan_duplicates, KeepRule, ...`.
"""

from vitgallery.core.duplicates.actions import (
    BACK_BY_HAND,
    BULK_ACTIONS,
    STOPPED_BY_USER,
    ActionEntry,
    ActionError,
    ActionPlace,
    ActionReport,
    BulkAction,
    GroupSelection,
    change_since_scan,
    export_target_problem,
    move_target_problem,
)
from vitgallery.core.duplicates.decisions import (
    DECISIONS,
    Decision,
    Separation,
    UserDecisions,
    chosen_keeps,
    decide,
    load_decisions,
    remember_keep,
    separate,
    separations,
    take_back,
)
from vitgallery.core.duplicates.features import (
    PairMatch,
    PhotoFeatures,
    analyse_photo,
    look_likeness,
    match_photos,
)
from vitgallery.core.duplicates.groups import (
    DuplicateGroup,
    DuplicateMember,
    DuplicateScan,
    MemberShape,
    fingerprint_pair,
    group_key,
    seed_groups,
    time_ago,
)
from vitgallery.core.duplicates.keep import DEFAULT_RULE, KeeperChoice, KeepRule, choose_keeper
from vitgallery.core.duplicates.pairs import PairTable
from vitgallery.core.duplicates.quality import PhotoQuality, measure_quality
from vitgallery.core.duplicates.scan import (
    DuplicateProgress,
    ScanError,
    candidate_pairs,
    follow_own_removal,
    kept_scan_is_current,
    load_scan,
    outdated_scan_age,
    scan_duplicates,
)
from vitgallery.core.duplicates.scoring import (
    DEFAULT_THRESHOLD,
    DEFAULT_WEIGHTS,
    PairEvidence,
    PairShape,
    ScoreWeights,
    agreement_counts,
    match_reason,
    pair_score,
    pair_scores,
)
from vitgallery.core.duplicates.spill import FEATURES_IN_MEMORY, SpilledFeatures

__all__ = [
    "BACK_BY_HAND", "BULK_ACTIONS", "STOPPED_BY_USER", "ActionEntry", "ActionError", "ActionPlace", "ActionReport", "BulkAction", "GroupSelection",
    "change_since_scan", "export_target_problem",
    "Decision", "Separation", "UserDecisions", "separations", "chosen_keeps", "fingerprint_pair", "load_decisions", "remember_keep", "separate",
    "take_back",
    "DECISIONS", "DEFAULT_RULE", "DEFAULT_THRESHOLD", "DEFAULT_WEIGHTS", "FEATURES_IN_MEMORY", "DuplicateGroup",
    "DuplicateMember", "DuplicateProgress", "DuplicateScan", "KeepRule", "KeeperChoice", "MemberShape",
    "PairEvidence", "PairMatch", "PairShape", "PairTable", "PhotoFeatures", "PhotoQuality", "ScanError", "ScoreWeights",
    "SpilledFeatures", "agreement_counts", "analyse_photo", "candidate_pairs", "choose_keeper", "decide",
    "follow_own_removal", "group_key", "move_target_problem", "kept_scan_is_current", "load_scan", "outdated_scan_age", "look_likeness", "match_photos",
    "match_reason", "measure_quality", "pair_score", "pair_scores",
    "scan_duplicates",
    "seed_groups", "time_ago",
]
