"""Data: where videos come from (folders, manifests, UCF101 / HMDB51 / Kinetics layouts), the generated samples
and the query sets of the localisation evaluation.

* :mod:`~motionmatch.data.sources`: discover and load sources into a manifest (``path, label, domain, group,
  split``), with failures listed, never fatal;
* :mod:`~motionmatch.data.synthetic` and :mod:`~motionmatch.data.long_synthetic`: labelled motion videos made in
  code (short clips; long untrimmed videos with ground truth and cuts);
* :mod:`~motionmatch.data.samples`: those samples made once and reused (``ensure_sample``, ``ensure_long_sample``);
* :mod:`~motionmatch.data.queries`: copy and same-motion query sets, read and written;
* :mod:`~motionmatch.data.edits`: edited copies of ranges of the long sample (VSC22's edits: rescale, crop, flip,
  speed, brightness, caption, partial copies both ways) with their ground truth;
* :mod:`~motionmatch.data.pose2sim`: the real cross-camera sample (Pose2Sim's demo: people filmed by 4
  synchronised cameras, cut into labelled windows; the pose2sim wheel fetched once, sha256-checked).
"""
from .edits import EDITS, write_edited_copies
from .long_synthetic import DISTRACTOR_LABEL, generate_long_videos
from .pose2sim import SampleUnavailableError, fetch_pose2sim_wheel, write_pose2sim_sample
from .queries import pick_query, read_query_list, write_copy_queries, write_same_motion_queries
from .samples import LONG_LABEL, ensure_long_sample, ensure_sample, write_long_manifest
from .sources import (Failure, discover_videos, load_dataset, load_folder, load_hmdb51, load_kinetics_csv, load_manifest,
                      load_source, load_ucf101, normalise_manifest)
from .synthetic import DOMAINS, MOTION_CLASSES, generate_sample_dataset, render_motion_clip

__all__ = ["EDITS", "write_edited_copies", "DISTRACTOR_LABEL", "generate_long_videos", "pick_query", "read_query_list", "write_copy_queries",
           "write_same_motion_queries", "LONG_LABEL", "ensure_long_sample", "ensure_sample", "write_long_manifest",
           "Failure", "discover_videos", "load_dataset", "load_folder", "load_hmdb51", "load_kinetics_csv",
           "load_manifest", "load_source", "load_ucf101", "normalise_manifest", "DOMAINS", "MOTION_CLASSES",
           "generate_sample_dataset", "render_motion_clip", "SampleUnavailableError", "fetch_pose2sim_wheel",
           "write_pose2sim_sample"]
