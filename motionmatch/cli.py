"""`motionmatch extract | index | search | evaluate | report | generate-sample` (and the beyond-zero-shot steps).

The same steps as the notebooks, without them. Every parameter is checked before any
work starts; bad input files are reported and skipped, never fatal. Each command is a
class with ``setup(parser)`` and ``execute(args)`` (see :mod:`motionmatch.cli_args`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if not sys.stderr.isatty():  # a log file, CI: redraw progress bars every 10 s, not many times a second
    os.environ.setdefault("TQDM_MININTERVAL", "10")

from . import config
from .cli_args import (Command, add_embeddings_arg, add_encoder_args, add_store_args, embeddings_dir,
                       non_negative_int, parse_pairs, positive_float, positive_int, register)
from .clips import DEFAULT_STRIDE_S, DEFAULT_WINDOW_FRAME_STRIDE, DEFAULT_WINDOW_FRAMES, SHOT_CHOICES
from .shots import DEFAULT_METHOD as SHOT_DEFAULT
from .cli_beyond import BEYOND_COMMANDS
from .cli_server import SERVER_COMMANDS
from .errors import MotionMatchError, ParameterError
from .table import read_extract_meta

DATASET_CHOICES = [None, "folder", "manifest", "ucf101", "hmdb51", "kinetics"]
# notebooks with their own index: `report --collection/--embeddings` (the main index) are not passed to them
OWN_PARAMETERS = {"06": ("collection",),  # its hybrid collection
                  "07": ("collection", "embeddings_dir")}  # the long videos' dense windows


class GenerateSample(Command):
    name = "generate-sample"
    help = "write the synthetic labelled motion videos + manifest.csv (--long: long videos + ground_truth.csv)"

    @staticmethod
    def setup(parser):
        parser.add_argument("--out", default="", help=f"sample folder (default: $MOTIONMATCH_SAMPLE_DIR, else "
                                                      f"{config.SETTINGS['sample_dir'][1]})")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--videos-per-class", type=positive_int("--videos-per-class"), default=32,
                            help="videos per motion class and domain (default 32)")
        parser.add_argument("--groups-per-class", type=positive_int("--groups-per-class"), default=16,
                            help="groups (same look, like one UCF101 gGG) per class and domain (default 16); "
                                 "metric learning needs many groups to train on")
        long = parser.add_argument_group("long videos (--long)")
        long.add_argument("--long", action="store_true",
                          help="write long untrimmed videos of motion segments with ground_truth.csv and cuts.csv "
                               "and manifest.csv (default folder: MOTIONMATCH_LONG_SAMPLE_DIR, else data/raw/sample_long)")
        long.add_argument("--n-videos", type=positive_int("--n-videos"), default=4, help="long videos (default 4)")
        long.add_argument("--duration-s", type=positive_float("--duration-s"), default=180.0,
                          help="seconds per long video (default 180)")
        long.add_argument("--copy-queries", type=non_negative_int("--copy-queries"), default=20,
                          help="copy queries cut from the long videos, with relevant.csv (default 20; 0 = none)")
        long.add_argument("--query-s", type=positive_float("--query-s"), default=4.0,
                          help="seconds per copy query (default 4)")

    @staticmethod
    def execute(args):
        if args.long:
            return GenerateSample.execute_long(args)
        import pandas as pd

        from .synthetic import DOMAINS, MOTION_CLASSES, generate_sample_dataset

        out = config.setting("sample_dir", args.out)
        manifest = Path(out) / "manifest.csv"
        expected = len(MOTION_CLASSES) * len(DOMAINS) * args.videos_per_class
        if manifest.exists():
            present = len(pd.read_csv(manifest))
            if present == expected:
                print(f"sample set already present: {manifest} ({present} videos)")
                return 0
            print(f"{manifest} lists {present} videos, {expected} were asked for: generating the sample set again")
        path = generate_sample_dataset(out, seed=args.seed, videos_per_class_per_domain=args.videos_per_class,
                                       groups_per_class_per_domain=args.groups_per_class)
        print(f"wrote {path}")
        return 0

    @staticmethod
    def long_folder(args) -> Path:
        """--out, else the configured long sample folder (MOTIONMATCH_LONG_SAMPLE_DIR, else data/raw/sample_long)."""
        return Path(args.out or config.setting("long_sample_dir"))

    @staticmethod
    def execute_long(args):
        from .long_run import ensure_long_sample

        manifest = ensure_long_sample(GenerateSample.long_folder(args), n_videos=args.n_videos,
                                      duration_s=args.duration_s, seed=args.seed, copy_queries=args.copy_queries,
                                      query_s=args.query_s)
        print(f"index the long videos with: motionmatch extract {manifest} --stride-s")
        return 0


class Extract(Command):
    name = "extract"
    help = "embed the clips of a folder / manifest / dataset (resumable)"

    @staticmethod
    def setup(parser):
        parser.add_argument("source", help="folder of videos, manifest CSV, or dataset root (with --dataset)")
        parser.add_argument("--dataset", default=None, choices=DATASET_CHOICES)
        add_embeddings_arg(parser, "--out")
        add_encoder_args(parser)
        parser.add_argument("--frames-per-clip", type=non_negative_int("--frames-per-clip"), default=0,
                            help=f"0 = the encoder's default (with --stride-s: {DEFAULT_WINDOW_FRAMES})")
        parser.add_argument("--frame-stride", type=positive_int("--frame-stride"), default=None,
                            help=f"take every n-th frame (default 2; with --stride-s: {DEFAULT_WINDOW_FRAME_STRIDE})")
        parser.add_argument("--clips-per-video", type=positive_int("--clips-per-video"), default=4,
                            help="clips spread over each video (the default mode, for short clips)")
        dense = parser.add_argument_group("dense windows over whole videos (long untrimmed videos)")
        dense.add_argument("--stride-s", type=positive_float("--stride-s"), nargs="?", const=DEFAULT_STRIDE_S,
                           default=None, metavar="S",
                           help="index a window (one clip: --frames-per-clip frames every --frame-stride frames, "
                                f"by default {DEFAULT_WINDOW_FRAMES} x {DEFAULT_WINDOW_FRAME_STRIDE}, about 2 s) every S "
                                f"seconds over each whole video (no value: the measured default, {DEFAULT_STRIDE_S:g} s; "
                                "see bench/bench_windows.py); recorded in extract_meta.json")
        dense.add_argument("--shots", default=None, choices=SHOT_CHOICES,
                           help="shot detection, so no window straddles a hard cut; none = the video is one shot "
                                f"(default: {SHOT_DEFAULT}, the measured best; content is ~20x faster on CPU)")
        dense.add_argument("--windows-per-chunk", type=positive_int("--windows-per-chunk"), default=None,
                           help="windows per saved part: a killed run resumes at the last finished part (default 32)")
        parser.add_argument("--batch-size", type=positive_int("--batch-size"), default=8)
        parser.add_argument("--workers", type=non_negative_int("--workers"), default=None,
                            help="decoding processes ahead of the encoder (default: CPU cores - 2, at most 4; 0 on 2 cores)")
        parser.add_argument("--overwrite", action="store_true", help="discard earlier results in --out")
        parser.add_argument("--prune", action="store_true", help="drop results of videos no longer in the source")
        scale = parser.add_argument_group("Ray: decode in Ray tasks, encode in a pool of actors (same output folder)")
        scale.add_argument("--ray", action="store_true", help="run on Ray Data (pip install -e .[ray])")
        scale.add_argument("--ray-address", default="", metavar="ADDR",
                           help="a Ray cluster (HOST:PORT from `ray start --head`, ray://HOST:10001, auto); "
                                "default: a local Ray on this machine")
        scale.add_argument("--ray-actors", type=positive_int("--ray-actors"), default=None, metavar="N",
                           help="encoder actors (default: one per GPU of the cluster, else half its CPUs)")

    @staticmethod
    def execute(args):
        from .clips import ClipSpec, WindowSpec
        from .datasets import load_source
        from .encoders.auto import choose_encoder
        from .pipeline import extract_embeddings

        if args.stride_s is None and (args.shots is not None or args.windows_per_chunk is not None):
            raise ParameterError("--shots and --windows-per-chunk apply to dense windows: add --stride-s [S]")
        windows = None
        if args.stride_s is not None:
            given = {"shots": args.shots, "windows_per_chunk": args.windows_per_chunk}
            windows = WindowSpec(stride_s=args.stride_s, **{k: v for k, v in given.items() if v is not None})
        if not args.ray and (args.ray_address or args.ray_actors is not None):
            raise ParameterError("--ray-address and --ray-actors apply to Ray extraction: add --ray")
        if args.ray and args.workers is not None:
            raise ParameterError("--workers sets local decode processes; with --ray, decoding runs in Ray tasks "
                                 "(use --ray-actors for the encoder actors)")
        if args.ray:
            from .ray_extract import import_ray

            import_ray()  # before loading a model: say now if Ray is missing
        manifest, failures = load_source(args.source, dataset=args.dataset)  # checks the path before loading a model
        if len(manifest) == 0 and not failures:
            raise ParameterError(f"no videos found in {args.source} (looked for {', '.join(config.VIDEO_EXTENSIONS)})")
        # with --ray the driver's encoder only names the run (id, preprocessing): keep it off the actors' GPU
        encoder, note = choose_encoder(args.encoder, model_id=config.setting("model_id", args.model),
                                       device="cpu" if args.ray else args.device)
        print(f"encoder: {note}")
        dense = windows is not None
        spec = ClipSpec(frames_per_clip=args.frames_per_clip or (DEFAULT_WINDOW_FRAMES if dense else encoder.frames_per_clip),
                        frame_stride=args.frame_stride or (DEFAULT_WINDOW_FRAME_STRIDE if dense else 2),
                        clips_per_video=args.clips_per_video)
        options = dict(clip_spec=spec, batch_size=args.batch_size, overwrite=args.overwrite, prune=args.prune,
                       discovery_failures=failures, encoder_note=note, window_spec=windows)
        if args.ray:
            from .ray_extract import extract_embeddings_ray

            summary = extract_embeddings_ray(manifest, encoder, embeddings_dir(args, "out"), address=args.ray_address,
                                             actors=args.ray_actors, **options)
        else:
            summary = extract_embeddings(manifest, encoder, embeddings_dir(args, "out"), workers=args.workers, **options)
        print(summary)
        return 0


class Index(Command):
    name = "index"
    help = "upsert an embeddings table into Milvus (idempotent)"

    @staticmethod
    def setup(parser):
        add_embeddings_arg(parser)
        add_store_args(parser)
        parser.add_argument("--recreate", action="store_true", help="drop the collection first")
        parser.add_argument("--remove-missing", action="store_true", help="delete rows of videos no longer in the table")
        parser.add_argument("--bulk", action="store_true",
                            help="write Milvus bulk-import files (pymilvus BulkWriter) and import them, for millions "
                                 "of rows; falls back to batched upserts, saying why, where the server cannot import")
        parser.add_argument("--bulk-dir", default="", metavar="DIR",
                            help="with --bulk: where to write the import files (default: a temporary folder that is "
                                 "removed after); the server must be able to read it")

    @staticmethod
    def execute(args):
        from .pipeline import index_embeddings
        from .store import MotionStore
        from .table import load_embeddings

        folder = embeddings_dir(args)
        meta = read_extract_meta(folder)
        table = load_embeddings(folder)
        with MotionStore(args.milvus_uri, args.collection) as store:  # unreachable URI fails here, before work
            if args.recreate:
                store.drop()
            clip_spec = {**meta["clip_spec"], **({"windows": meta["windows"]} if "windows" in meta else {})}
            if args.bulk:
                from .bulk import bulk_index

                summary, report = bulk_index(table, store, encoder_id=meta["encoder_id"],
                                             preprocessing=meta["preprocessing"], remove_missing=args.remove_missing,
                                             clip_spec=clip_spec, files_dir=args.bulk_dir or None)
                print(f"bulk: {report.rows:,} rows by {report.method}"
                      + (f" ({report.rows_per_s:,.0f} rows/s)" if report.rows_per_s else ""))
            else:
                summary = index_embeddings(table, store, encoder_id=meta["encoder_id"],
                                           preprocessing=meta["preprocessing"], remove_missing=args.remove_missing,
                                           clip_spec=clip_spec)
            calibration_note = Index.store_calibration(store)
        print(summary)
        print(calibration_note)
        return 0

    @staticmethod
    def store_calibration(store) -> str:
        """Fit the segment scores' gallery calibration and store it with the collection (search loads it)."""
        from .localize import save_gallery_calibration

        try:
            calibration = save_gallery_calibration(store)
        except ParameterError as err:  # too few windows to fit: a search refits (or runs uncalibrated) and says so
            return f"gallery calibration not stored: {err}"
        return (f"gallery calibration (segment z-scores) fitted on {calibration.n_fitted_} windows and stored with "
                f"collection '{store.collection}'")


class Search(Command):
    name = "search"
    help = "find clips (or, with --segments, time ranges) whose motion is like a query video's"

    @staticmethod
    def setup(parser):
        parser.add_argument("query", help="query video file")
        add_store_args(parser)
        parser.add_argument("-k", type=positive_int("-k"), default=10, help="hits (or segments) to return")
        parser.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                            help="scalar filter, repeatable (e.g. --filter domain=studio)")
        parser.add_argument("--one-per-video", action="store_true", help="at most one hit per video (group_by)")
        parser.add_argument("--json", action="store_true", help="print hits (or segments) as JSON")
        Search.add_range_args(parser)

    @staticmethod
    def execute(args):
        from .localize import search_range
        from .store import MotionStore

        filters: dict[str, list[str]] = {}
        for field, value in parse_pairs(args.filter, "--filter", "FIELD=VALUE"):
            filters.setdefault(field, []).append(value)
        filters = {k: v[0] if len(v) == 1 else v for k, v in filters.items()}
        calibration = Search.calibration_option(args.calibration)
        with MotionStore(args.milvus_uri, args.collection) as store:
            result = search_range(store, args.query, args.start, args.end, k=args.k, segments=args.segments,
                                  exclude_video=args.exclude_video, calibration=calibration, filters=filters or None,
                                  n_candidates=args.candidates, threshold=args.threshold,
                                  group_by_video=args.one_per_video, fetch_windows=not args.hits_only,
                                  split_at_cuts=False if args.ignore_cuts else None,
                                  **({"extend_margin": None} if args.as_aligned else {}))
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        plan = result.query
        if args.segments:
            records = result.segment_records()
            if args.json:
                print(json.dumps(records, indent=2))
                return 0
            print(f"query: {plan.path} [{plan.start_s:.2f}-{plan.end_s:.2f} s, {len(plan.windows)} windows]; "
                  f"scores: {result.scores}")
            for rank, seg in enumerate(records, 1):
                print(f"{rank:3d}  {seg['score']:7.3f}  {seg['video_path']} [{seg['start_s']:.2f}-{seg['end_s']:.2f} s]"
                      f"  <- query [{seg['query_start_s']:.2f}-{seg['query_end_s']:.2f} s], {len(seg['hits'])} hits")
            print(f"{len(records)} segments")
            return 0
        hits = result.hit_records(args.k, one_per_video=args.one_per_video)
        if args.json:
            print(json.dumps(hits, indent=2))
            return 0
        print(f"query: {plan.path} [{plan.start_s:.2f}-{plan.end_s:.2f} s, {len(plan.windows)} windows]")
        for rank, hit in enumerate(hits, 1):
            print(f"{rank:3d}  {hit['score']:.4f}  {hit['label']:<18} {hit['domain']:<10} {hit['video_path']} "
                  f"[{hit['start_s']:.2f}-{hit['end_s']:.2f} s]  <- query [{hit['query_start_s']:.2f}-"
                  f"{hit['query_end_s']:.2f} s]")
        print(f"{len(hits)} hits")
        return 0

    @staticmethod
    def add_range_args(parser) -> None:
        """The options of a time-range / segment search (``search``; ``evaluate --segments`` takes the scoring ones)."""
        parser.add_argument("--start", type=float, default=None, help="start of the query range, seconds (default 0)")
        parser.add_argument("--end", type=float, default=None, help="end of the query range, seconds (default: file end)")
        own = parser.add_mutually_exclusive_group()
        own.add_argument("--exclude-video", dest="exclude_video", action="store_const", const=True, default=None,
                         help="drop the query's own file from the results (the default when it is indexed)")
        own.add_argument("--include-video", dest="exclude_video", action="store_const", const=False,
                         help="keep the query's own file even when it is indexed")
        parser.add_argument("--segments", action="store_true",
                            help="return segments (time ranges aligned to the query's windows) instead of window hits")
        Search.add_scoring_args(parser)


    @staticmethod
    def add_scoring_args(parser) -> None:
        parser.add_argument("--calibration", default="gallery", metavar="gallery|none|FILE.npz",
                            help="segment scores: z-scores against the gallery (default; fitted on a sample of the "
                                 "collection, or a whitening .npz from `motionmatch calibrate --mode whiten`), or raw cosine")
        parser.add_argument("--threshold", type=float, default=None,
                            help="lowest window score a segment keeps (default 0 z-score: above the query window's "
                                 "gallery mean; 0.5 raw cosine)")
        parser.add_argument("--candidates", type=positive_int("--candidates"), default=10,
                            help="videos (most votes over the query windows' top-k) aligned into segments")
        parser.add_argument("--hits-only", action="store_true",
                            help="align the Milvus hits alone, without fetching the candidates' windows (faster)")
        parser.add_argument("--as-aligned", action="store_true",
                            help="keep segments as aligned: do not grow them over the windows where the query's motion "
                                 "goes on (growth finds whole same-motion moments; copies are never grown)")
        parser.add_argument("--ignore-cuts", action="store_true",
                            help="do not restart the query's windows at shot cuts inside the range (by default they "
                                 "do, with the index's shot detector, when the index's windows are bounded by shots)")


    @staticmethod
    def calibration_option(value: str):
        """``--calibration``: "gallery", "none" -> None, or a fitted whitening loaded from a .npz (checked now)."""
        from .calibrate import ScoreCalibration
        from .localize import GALLERY

        if value in ("gallery", "none"):
            return GALLERY if value == "gallery" else None
        calibration = ScoreCalibration.load(value)
        if calibration.mode != "whiten":
            raise ParameterError(f"{value} holds a {calibration.mode!r} calibration; segment z-scores need a whitening: "
                                 f"`motionmatch calibrate --mode whiten --out {value}`, or --calibration gallery")
        return calibration


class Evaluate(Command):
    name = "evaluate"
    help = "retrieval metrics with bootstrap CIs; writes CSV and JSON"

    @staticmethod
    def setup(parser):
        parser.add_argument("--embeddings", default=None, help="an embeddings folder (skip extraction)")
        parser.add_argument("--dataset", default=None, choices=DATASET_CHOICES)
        parser.add_argument("--root", default=None, help="dataset root (with --dataset)")
        parser.add_argument("--split", type=positive_int("--split"), default=1, help="official split number")
        parser.add_argument("--protocol", default="all", choices=["all", "leave-one-out", "domains", "train-test"],
                            help="all = every protocol the data supports")
        parser.add_argument("--out", default="", help=f"output folder (default: $MOTIONMATCH_EVALUATION_DIR, else "
                                                      f"{config.SETTINGS['evaluation_dir'][1]})")
        parser.add_argument("--n-boot", type=positive_int("--n-boot"), default=1000)
        add_encoder_args(parser)
        parser.add_argument("--clips-per-video", type=positive_int("--clips-per-video"), default=4)
        parser.add_argument("--segments", default="", metavar="GT.csv",
                            help="localisation: search each query of --queries in the collection and score the "
                                 "segments against these relevant moments (relevant.csv of "
                                 "long_synthetic.write_copy_queries)")
        parser.add_argument("--queries", default="", help="with --segments: the query list (default: queries.csv "
                                                          "beside GT.csv): query_id, path[, kind, query_start_s, query_end_s]")
        parser.add_argument("-k", type=positive_int("-k"), default=10, help="with --segments: hits per query window "
                                                                             "and segments per query")
        add_store_args(parser)
        Search.add_scoring_args(parser)

    @staticmethod
    def execute(args):
        from .encoders.auto import describe_encoder
        from .findings import format_headline, run_findings, write_findings
        from .table import load_embeddings

        out = config.setting("evaluation_dir", args.out)
        if args.segments:
            return Evaluate.localisation(args, Path(out))
        if args.embeddings:
            folder = Path(args.embeddings)
        elif args.dataset and args.root:
            from .clips import ClipSpec
            from .datasets import load_source
            from .encoders.auto import choose_encoder
            from .pipeline import extract_embeddings

            kwargs = {"split": args.split} if args.dataset in ("ucf101", "hmdb51") else {}
            manifest, failures = load_source(args.root, dataset=args.dataset, **kwargs)
            encoder, note = choose_encoder(args.encoder, model_id=config.setting("model_id", args.model),
                                           device=args.device)
            print(f"encoder: {note}")
            slug = encoder.encoder_id.replace(":", "_").replace("/", "_")
            folder = Path(config.setting("embeddings_dir")) / f"{args.dataset}-split{args.split}-{slug}"
            spec = ClipSpec(frames_per_clip=encoder.frames_per_clip, clips_per_video=args.clips_per_video)
            print(extract_embeddings(manifest, encoder, folder, clip_spec=spec, discovery_failures=failures,
                                     encoder_note=note))
        else:
            raise ParameterError("evaluate needs --embeddings DIR, or --dataset NAME with --root PATH")
        found = run_findings(load_embeddings(folder), protocol=args.protocol, n_boot=args.n_boot)
        written = write_findings(found, out)
        print(f"encoder: {describe_encoder(found.encoder_id)}")
        print(f"{found.n_clips} clips from {found.n_videos} videos; means with 95% bootstrap CIs over queries")
        print(format_headline(found))
        print(f"wrote {len(written)} files to {out}")
        return 0

    @staticmethod
    def localisation(args, out: Path) -> int:
        """``evaluate --segments GT.csv``: segment search over a query list, metrics with 95% bootstrap CIs."""
        from .encoders.auto import describe_encoder
        from .localize_eval import evaluate_search, format_metrics, read_query_list
        from .store import MotionStore

        queries, relevant = read_query_list(args.segments, args.queries or None)  # files checked before any work
        calibration = Search.calibration_option(args.calibration)
        with MotionStore(args.milvus_uri, args.collection) as store:
            encoder_id = store.encoder_info()["encoder_id"]
            metrics, predictions, notes = evaluate_search(
                store, queries, relevant, n_resamples=args.n_boot, k=args.k, calibration=calibration,
                n_candidates=args.candidates, threshold=args.threshold, fetch_windows=not args.hits_only,
                **({"extend_margin": None} if args.as_aligned else {}))
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        out.mkdir(parents=True, exist_ok=True)
        metrics.to_csv(out / "localization.csv", index=False)
        predictions.to_csv(out / "localization_predictions.csv", index=False)
        (out / "localization.json").write_text(json.dumps(
            {"encoder_id": encoder_id, "segments": str(args.segments), "calibration": args.calibration,
             "metrics": metrics.to_dict(orient="records")}, indent=2))
        print(f"encoder: {describe_encoder(encoder_id)}")
        print(f"{len(queries)} queries, {len(predictions)} segments; means with 95% bootstrap CIs over queries")
        print(format_metrics(metrics))
        print(f"wrote localization.csv, localization_predictions.csv, localization.json to {out}")
        return 0


class Report(Command):
    name = "report"
    help = "run the notebooks with papermill; write reports/*.html"

    @staticmethod
    def setup(parser):
        parser.add_argument("--out", default=str(config.REPORTS_DIR))
        parser.add_argument("--videos", default="", help="sample folder used when no --source "
                                                         f"(default: $MOTIONMATCH_SAMPLE_DIR, else {config.SETTINGS['sample_dir'][1]})")
        parser.add_argument("--source", default="", help="folder or manifest CSV to report on")
        parser.add_argument("--encoder", default="auto")
        parser.add_argument("--model", default="", metavar="DIR_OR_HUB_ID",
                            help="V-JEPA 2 checkpoint for the notebooks (parameter model_id; default: $MOTIONMATCH_MODEL, "
                                 f"else {config.HUB_MODEL_ID})")
        add_store_args(parser)
        parser.add_argument("--embeddings", default="", help="embeddings folder the notebooks write and read "
                                                             "(parameter embeddings_dir; default: $MOTIONMATCH_EMBEDDINGS_DIR)")
        parser.add_argument("--only", default="", help="comma-separated notebook prefixes, e.g. 01,02")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help="extra notebook parameter (JSON value), repeatable")
        parser.add_argument("--extra-embeddings", action="append", default=[], metavar="NAME=DIR",
                            help="another encoder's embeddings of the same clips for notebook 06's hybrid, e.g. "
                                 "visual=data/interim/embeddings_clip (repeatable)")

    @staticmethod
    def notebook_parameters(args) -> dict:
        """The parameters every notebook gets; model / store / folder ones only when given (else config decides)."""
        parameters = {"encoder": args.encoder, "sample_dir": str(Path(config.setting("sample_dir", args.videos)).resolve()),
                      "source": str(Path(args.source).resolve()) if args.source else ""}
        if args.model:  # a local folder is made absolute: the notebook kernel runs in notebooks/
            parameters["model_id"] = str(Path(args.model).resolve()) if Path(args.model).is_dir() else args.model
        if args.milvus_uri:
            parameters["milvus_uri"] = args.milvus_uri if "://" in args.milvus_uri else str(Path(args.milvus_uri).resolve())
        if args.collection:
            parameters["collection"] = args.collection
        if args.embeddings:
            parameters["embeddings_dir"] = str(Path(args.embeddings).resolve())
        for name, value in parse_pairs(args.param, "--param"):
            try:
                parameters[name] = json.loads(value)
            except json.JSONDecodeError:
                parameters[name] = value
        extra = {}
        for name, folder in parse_pairs(args.extra_embeddings, "--extra-embeddings", "NAME=DIR"):
            read_extract_meta(folder)  # an embeddings folder written by `motionmatch extract`, or a clear error
            extra[name] = str(Path(folder).resolve())
        if extra:
            parameters["extra_embeddings"] = extra
        return parameters

    @staticmethod
    def runs(args) -> list[tuple[list[str], dict]]:
        """(notebook prefixes, parameters) for each run_all call, in notebook order.

        --collection and --embeddings name the main index and table; notebook 06 keeps its hybrid
        collection apart and notebook 07 its long videos' windows and collection (their own parameters,
        resolved by config: MOTIONMATCH_HYBRID_COLLECTION, MOTIONMATCH_LONG_*), so they never get these.
        """
        from .report import list_notebooks

        only = [p for p in args.only.split(",") if p]
        parameters = Report.notebook_parameters(args)
        selected = [n.name[:2] for n in list_notebooks() if not only or any(n.name.startswith(p) for p in only)]
        runs: list[tuple[list[str], dict]] = []
        for prefix in selected:
            own = OWN_PARAMETERS.get(prefix, ())
            values = {k: v for k, v in parameters.items() if k not in own}
            if runs and runs[-1][1] == values:
                runs[-1][0].append(prefix)
            else:
                runs.append(([prefix], values))
        return runs

    @staticmethod
    def execute(args):
        from .report import format_timings, run_all

        done = [path for prefixes, parameters in Report.runs(args) for path in run_all(args.out, parameters, only=prefixes)]
        print(f"wrote {len(done)} reports to {args.out}: " + ", ".join(p.with_suffix('.html').name for p in done))
        print(format_recorded_values(done))
        print(format_timings(done))
        return 0


def format_recorded_values(executed_notebooks) -> str:
    """The values each executed notebook recorded, as the run's closing summary."""
    from .notebook import read_records

    lines = ["summary (values recorded by the notebooks):"]
    for notebook in executed_notebooks:
        for name, value in read_records(notebook).items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            lines.append(f"  {notebook.stem[:2]}  {name:<45} {shown}")
    return "\n".join(lines)


CORE_COMMANDS = [GenerateSample, Extract, Index, Search, Evaluate, Report]
ALL_COMMANDS = CORE_COMMANDS + list(BEYOND_COMMANDS) + SERVER_COMMANDS


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The ``motionmatch`` parser and its name -> execute table."""
    parser = argparse.ArgumentParser(prog="motionmatch", description=__doc__.splitlines()[0])
    commands = register(parser.add_subparsers(dest="command", required=True), ALL_COMMANDS)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        return commands[args.command](args)
    except MotionMatchError as err:
        print(f"motionmatch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished videos are saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
