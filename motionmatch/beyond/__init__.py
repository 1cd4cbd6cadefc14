"""Beyond zero-shot (notebook 06): one import for the held-out comparison and its parts.

Each job lives in its own module; this one only gathers their public names, the way
scikit-learn's ``metrics/__init__.py`` re-exports ``_ranking``. Scoring is the one engine of
:mod:`motionmatch.evaluation` (``evaluate_scores``, ``exclusion_mask``):

=========================  ===========================================================
:mod:`motionmatch.beyond.splits`  held-out group splits, extra encoders' vectors, protocol pairs
:mod:`motionmatch.beyond.methods`  vector representations and methods (fit, score, fuse, re-rank)
:mod:`motionmatch.beyond.gating`  per-pair channel gates from coverage (fusion falls back where pose sees nobody)
:mod:`motionmatch.beyond.compare`  the comparison chosen on validation, measured once on test
:mod:`motionmatch.beyond.channels`  several encoders of the same clips: extracted, joined, scored alone and fused
:mod:`motionmatch.beyond.hybrid_index`  Milvus persistence: multi-vector collection + stored transforms
:mod:`motionmatch.beyond.hybrid_check`  Milvus hybrid search against the numpy fusion
:mod:`motionmatch.beyond.conclusions`  the plain-words conclusion
=========================  ===========================================================
"""
from __future__ import annotations

from .compare import (DEFAULT_DBA_KS, DEFAULT_KR_PARAMS, DEFAULT_QE_KS, DEFAULT_WHITEN_GRID, ROW_BEST,
                      ROW_CENTER, ROW_CHANNELS, ROW_DBA, ROW_KR, ROW_NTXENT, ROW_QE, ROW_RRF, ROW_TRIPLET, ROW_WEIGHTED,
                      ROW_WHITEN, ROW_ZERO_SHOT, SELECTIONS, TIMING_REPEATS, ComparisonResult, LeakageError,
                      ProtocolRun, compare_methods, compare_on_split, run_protocols)
from .channels import channel_scores, channel_table, channels_dir, extract_channels, fusion_fallback
from .conclusions import conclusion_lines
from .gating import (GATED_FIELD_KEY, field_gate, field_gates, gated_field, gated_hybrid_search, gated_rrf,
                     gated_weighted)
from .hybrid_check import SCORE_TOLERANCE, HybridCheckResult, milvus_hybrid_check
from .hybrid_index import (TRANSFORM_PREFIXES, hybrid_field_names, index_hybrid, load_transforms,
                           save_transforms)
from .methods import (FUSIONS, KR_POOL_SIZE, RRF_K, VECTOR_KINDS, FitCache, FittedMethod, FittedVectors,
                      MethodSpec, VectorSpec, head_config, simplex_weights)
from .splits import (PROTOCOLS, ProtocolPair, attach_extra_vectors, coverage_column, protocol_pairs,
                     split_held_out_groups)

__all__ = ["DEFAULT_DBA_KS", "DEFAULT_KR_PARAMS", "DEFAULT_QE_KS", "DEFAULT_WHITEN_GRID", "ROW_BEST", "ROW_CENTER",
           "ROW_CHANNELS", "ROW_DBA", "ROW_KR", "ROW_NTXENT", "ROW_QE", "ROW_RRF", "ROW_TRIPLET", "ROW_WEIGHTED",
           "ROW_WHITEN", "ROW_ZERO_SHOT", "SELECTIONS", "TIMING_REPEATS", "ComparisonResult", "LeakageError",
           "ProtocolRun", "compare_methods", "compare_on_split", "run_protocols", "conclusion_lines", "channel_scores", "channel_table", "channels_dir", "extract_channels", "fusion_fallback", "GATED_FIELD_KEY",
           "field_gate", "field_gates", "gated_field", "gated_hybrid_search", "gated_rrf", "gated_weighted",
           "SCORE_TOLERANCE",
           "HybridCheckResult", "milvus_hybrid_check", "TRANSFORM_PREFIXES", "hybrid_field_names",
           "index_hybrid", "load_transforms", "save_transforms", "FUSIONS", "KR_POOL_SIZE", "RRF_K",
           "VECTOR_KINDS", "FitCache", "FittedMethod", "FittedVectors", "MethodSpec", "VectorSpec",
           "head_config", "simplex_weights", "PROTOCOLS", "ProtocolPair", "attach_extra_vectors",
           "coverage_column", "protocol_pairs", "split_held_out_groups"]
