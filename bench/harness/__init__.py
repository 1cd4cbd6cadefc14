"""What every benchmark does the same way, in one place (``from bench.harness import ...``).

=======================  ===================================================================================
:mod:`~.run`             :class:`BenchRun`: a benchmark's command, start time and machine, its target records,
                         its JSON under ``bench/out``; the paths (``OUT_DIR``)
:mod:`~.records`         :class:`Record`: the one schema of a measured value, its target and its verdict
:mod:`~.machine`         :func:`machine_info`, written once per run (CPUs, memory, platform, load)
:mod:`~.memory`          :func:`own_peak_mib` (this process's VmHWM) and :class:`PeakRss` (a process tree, sampled)
:mod:`~.timing`          :func:`time_calls` (the one latency loop) and :class:`StageTimers` (time inside functions)
:mod:`~.children`        :func:`run_child` / :func:`child_main`: a measurement in a fresh interpreter
:mod:`~.vectors`         :class:`MixtureData` (clustered unit vectors), exact top-k, recall@k
:mod:`~.milvus`          Milvus Lite's background work and segments; a server collection, its index, its rows
:mod:`~.videos`          the generated videos the benches share (cached in ``bench/out/videos``)
:mod:`~.gallery`         the long-video gallery of bench_localize and bench_query_cuts (videos, index, queries)
=======================  ===================================================================================

A package rather than a longer ``bench/common.py`` (which held only the child runner and the JSON writer): these
are ten jobs, so ten small single-purpose modules behind one face, as sentence-transformers' ``util/`` is. Heavy
libraries (pymilvus, torch, motionmatch's video code) load inside the functions that use them, so importing the
harness stays cheap for a bench that needs none of them.

**The quick-mode rule.** ``--quick`` runs every measurement at a small size to show that the whole path works;
it never judges a target: every target record of a quick run says ``NOT JUDGED (quick)`` with the value it
measured (:meth:`BenchRun.target`). Quick sizes are too small, and their single rounds too noisy on a shared
2-core machine, for a verdict (the embedding ratio read 1.37x and 1.87x in two quick runs, the memory slope
+2.54 MiB per video at 2-16 videos against +0.01 in the full run at 4-96).
"""
from .children import ChildFailed, child_env, child_main, run_child
from .machine import describe, load_average_text, machine_info
from .memory import PeakRss, children_peak_mib, own_peak_mib
from .records import FAIL, NOT_JUDGED, NOT_MEASURED, PASS, VERDICTS, Record, verdict_lines
from .run import BENCH_DIR, OUT_DIR, PROJECT_ROOT, BenchRun, save_result
from .timing import Latencies, StageTimers, time_calls
from .vectors import K, MixtureData, exact_top_k, exact_top_k_single, exact_truth, recall_at_k
from .milvus import (MIXTURE_ENCODER_ID, lite_segment_rows, lite_wait_for_background_work, open_server_collection,
                     release_lite, server_build_index, server_search_latency, vectors_table)
from .videos import VIDEO_DIR, manifest_for, motion_videos, texture_video
from .gallery import (LONG_FULL, LONG_QUICK, QUERY_S, build_gallery, copies_per_edit, edited_lists, gallery_root,
                      length_lists, open_store, query_lists, same_motion_lists)

__all__ = ["ChildFailed", "child_main", "run_child", "load_average_text", "machine_info", "PeakRss", "own_peak_mib",
           "FAIL", "NOT_JUDGED", "NOT_MEASURED", "PASS", "VERDICTS", "Record", "verdict_lines", "BENCH_DIR",
           "OUT_DIR", "PROJECT_ROOT", "BenchRun", "save_result", "Latencies", "StageTimers", "time_calls", "K",
           "MixtureData", "exact_top_k", "exact_top_k_single", "exact_truth", "recall_at_k", "lite_segment_rows",
           "lite_wait_for_background_work", "open_server_collection", "release_lite", "server_build_index",
           "server_search_latency", "vectors_table", "MIXTURE_ENCODER_ID", "VIDEO_DIR", "manifest_for", "motion_videos",
           "texture_video", "LONG_FULL", "LONG_QUICK", "QUERY_S", "build_gallery", "gallery_root", "open_store",
           "query_lists", "copies_per_edit", "edited_lists", "same_motion_lists", "length_lists",
           "children_peak_mib", "describe", "child_env"]
