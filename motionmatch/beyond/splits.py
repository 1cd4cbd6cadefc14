"""Which clips face which: held-out group splits, extra encoders' vectors and protocol pairs.

The comparison of :mod:`motionmatch.beyond.compare` is trusted only if no group (source video /
performer / scene) is on two sides: :func:`split_held_out_groups` guarantees it. A protocol
pair (:func:`protocol_pairs`) is one scoring: the queries of one domain against the gallery of
one domain (*same-domain* leave-one-out inside a domain, *cross-domain* every ordered pair).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..table import COVERAGE_COLUMN, clip_coverage, effective_groups, require_columns
from ..validation import check_scalar

PROTOCOLS = ("same-domain", "cross-domain")


def split_held_out_groups(table: pd.DataFrame, test_fraction: float = 0.4,
                          seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit_table, test_table), split by group: no group is on both sides.

    Stratified by (label, domain): a cell with n >= 2 groups sends round(test_fraction * n) of them
    (at least 1, at most n - 1) to test, so the cell appears on both sides. Cells holding a single
    group cannot be on both sides; for each label those singletons move *together* (the label's
    one-group cells of every domain go to the same side), so a label that is split this way still
    has clips in more than one domain on its side and cross-domain retrieval stays measurable.
    """
    require_columns(table, ("video_path", "group", "label", "domain"))
    check_scalar(test_fraction, "test_fraction", float, min_value=0, max_value=1, include_min=False, include_max=False)
    groups = effective_groups(table)
    frame = pd.DataFrame({"group": groups, "label": table["label"].astype(str).to_numpy(),
                          "domain": table["domain"].astype(str).to_numpy()})
    per_group = frame.groupby("group", sort=True).agg(label=("label", lambda s: s.mode().iloc[0]),
                                                      domain=("domain", lambda s: s.mode().iloc[0]))
    if len(per_group) < 2:
        raise ParameterError(f"the table has {len(per_group)} group(s); a held-out split needs at least 2 "
                             "(fill the 'group' column of the manifest, or add videos)")
    rng = np.random.default_rng(seed)
    test_groups: set[str] = set()
    singletons: dict[str, list[str]] = {}
    for (label, _domain), cell in per_group.groupby(["label", "domain"], sort=True):
        names = list(rng.permutation(cell.index.to_numpy()))
        if len(names) == 1:
            singletons.setdefault(label, []).extend(names)
            continue
        n_test = min(len(names) - 1, max(1, int(round(test_fraction * len(names)))))
        test_groups.update(names[:n_test])
    bundles = [singletons[label] for label in sorted(singletons)]
    if bundles:
        order = rng.permutation(len(bundles))
        n_test = int(round(test_fraction * len(bundles)))
        if len(bundles) >= 2:
            n_test = min(len(bundles) - 1, max(1, n_test))
        elif not test_groups:
            n_test = 1  # a single bundle and nothing else in test: keep the test side non-empty
        for index in order[:n_test]:
            test_groups.update(bundles[index])
    if not test_groups or len(test_groups) == len(per_group):  # degenerate tables: keep both sides non-empty
        names = list(rng.permutation(per_group.index.to_numpy()))
        test_groups = set(names[:max(1, min(len(names) - 1, int(round(test_fraction * len(names)))))])
    in_test = np.isin(groups, list(test_groups))
    return table[~in_test].reset_index(drop=True), table[in_test].reset_index(drop=True)


def attach_extra_vectors(table: pd.DataFrame, extra_tables: Mapping[str, pd.DataFrame] | None) -> pd.DataFrame:
    """Add each extra encoder's embeddings (e.g. ``{"visual": clip_table}``) as a column of the same name.

    Rows are matched on (video_path, clip_index); encoders with different clip lengths sample
    windows centred alike, so this pairs each clip with the other encoder's clip at the same index.
    Every row of ``table`` needs a match. An extra table with a ``coverage`` column (the pose channel) also
    gives ``<name>_coverage``, which fusion reads to leave that channel out where it saw no person.
    """
    out = table.copy()
    for name, extra in (extra_tables or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", name) or name in out.columns or name == "head":
            raise ParameterError(f"extra vector name {name!r} is not usable: use letters, digits and '_', not an "
                                 f"existing column ({', '.join(out.columns)}) nor 'head'")
        require_columns(extra, ("video_path", "clip_index", "embedding"), f"extra table {name!r}")
        keyed = extra.assign(_key=extra["video_path"].astype(str) + "#" + extra["clip_index"].astype(int).astype(str))
        lookup = dict(zip(keyed["_key"], keyed["embedding"]))
        coverage = dict(zip(keyed["_key"], clip_coverage(extra))) if COVERAGE_COLUMN in extra.columns else None
        keys = out["video_path"].astype(str) + "#" + out["clip_index"].astype(int).astype(str)
        missing = int((~keys.isin(lookup.keys())).sum())
        if missing:
            raise ParameterError(f"extra table {name!r} has no clip for {missing} of {len(out)} rows (matched on "
                                 "video_path and clip_index); extract it from the same videos with the same clips_per_video")
        out[name] = [np.asarray(lookup[key], dtype=np.float32) for key in keys]
        if coverage is not None:
            out[coverage_column(name)] = [float(coverage[key]) for key in keys]
    return out


def coverage_column(vector_column: str) -> str:
    """The coverage column of a vector column: ``coverage`` for the main ``embedding``, ``<name>_coverage`` for an
    extra encoder's vectors (:func:`attach_extra_vectors`)."""
    return COVERAGE_COLUMN if vector_column == "embedding" else f"{vector_column}_{COVERAGE_COLUMN}"



@dataclass
class ProtocolPair:
    """One scoring of a protocol: queries of one domain against the gallery of one domain."""

    protocol: str  # "same-domain" or "cross-domain"
    query_domain: str
    gallery_domain: str
    query_rows: np.ndarray  # row positions in the test table
    gallery_rows: np.ndarray


def protocol_pairs(test_table: pd.DataFrame) -> list[ProtocolPair]:
    """Same-domain pairs (A, A): leave-one-out inside each domain; cross-domain pairs: every ordered (A, B), A != B."""
    require_columns(test_table, ("domain",))
    domains = test_table["domain"].astype(str).to_numpy()
    names = sorted(set(domains))
    rows = {name: np.flatnonzero(domains == name) for name in names}
    pairs = [ProtocolPair("same-domain", a, a, rows[a], rows[a]) for a in names]
    pairs += [ProtocolPair("cross-domain", a, b, rows[a], rows[b]) for a in names for b in names if a != b]
    return pairs
