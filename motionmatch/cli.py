"""`motionmatch extract | index | search | evaluate | report | generate-sample`.

The same steps as the notebooks, without them. Every parameter is checked before any
work starts; bad input files are reported and skipped, never fatal.
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
from .cli_args import DEFAULT_EMBEDDINGS_DIR, non_negative_int, positive_int
from .errors import MotionMatchError, ParameterError



def _add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--milvus-uri", default=config.DEFAULT_MILVUS_URI,
                        help="Milvus Lite .db file or http://host:19530 (default: %(default)s)")
    parser.add_argument("--collection", default=config.DEFAULT_COLLECTION, help="collection name (default: %(default)s)")


def _add_encoder_args(parser: argparse.ArgumentParser) -> None:
    from .encoders.auto import ENCODER_CHOICES

    parser.add_argument("--encoder", default="auto", choices=ENCODER_CHOICES,
                        help="auto = V-JEPA 2 if its weights load, else FlowEncoder (default: %(default)s)")
    parser.add_argument("--model", default=config.DEFAULT_MODEL_ID, help="hub id or local folder of the checkpoint")
    parser.add_argument("--device", default=None, choices=[None, "cpu", "cuda"], help="default: CUDA when present")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motionmatch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    sample = commands.add_parser("generate-sample", help="write the synthetic labelled motion videos + manifest.csv")
    sample.add_argument("--out", default=str(config.SAMPLE_VIDEOS_DIR))
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--videos-per-class", type=positive_int("--videos-per-class"), default=32,
                        help="videos per motion class and domain (default 32)")
    sample.add_argument("--groups-per-class", type=positive_int("--groups-per-class"), default=16,
                        help="groups (same look, like one UCF101 gGG) per class and domain (default 16); "
                             "metric learning needs many groups to train on")

    extract = commands.add_parser("extract", help="embed the clips of a folder / manifest / dataset (resumable)")
    extract.add_argument("source", help="folder of videos, manifest CSV, or dataset root (with --dataset)")
    extract.add_argument("--dataset", default=None, choices=[None, "folder", "manifest", "ucf101", "hmdb51", "kinetics"])
    extract.add_argument("--out", default=str(DEFAULT_EMBEDDINGS_DIR), help="embeddings folder (default: %(default)s)")
    _add_encoder_args(extract)
    extract.add_argument("--frames-per-clip", type=non_negative_int("--frames-per-clip"), default=0, help="0 = encoder default")
    extract.add_argument("--frame-stride", type=positive_int("--frame-stride"), default=2)
    extract.add_argument("--clips-per-video", type=positive_int("--clips-per-video"), default=4)
    extract.add_argument("--batch-size", type=positive_int("--batch-size"), default=8)
    extract.add_argument("--workers", type=non_negative_int("--workers"), default=None,
                         help="decoding processes ahead of the encoder (default: CPU cores - 2, at most 4; 0 on 2 cores)")
    extract.add_argument("--overwrite", action="store_true", help="discard earlier results in --out")
    extract.add_argument("--prune", action="store_true", help="drop results of videos no longer in the source")

    index = commands.add_parser("index", help="upsert an embeddings table into Milvus (idempotent)")
    index.add_argument("--embeddings", default=str(DEFAULT_EMBEDDINGS_DIR))
    _add_store_args(index)
    index.add_argument("--recreate", action="store_true", help="drop the collection first")
    index.add_argument("--remove-missing", action="store_true", help="delete rows of videos no longer in the table")

    search = commands.add_parser("search", help="find clips whose motion is like a query video's")
    search.add_argument("query", help="query video file")
    _add_store_args(search)
    search.add_argument("-k", type=positive_int("-k"), default=10)
    search.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                        help="scalar filter, repeatable (e.g. --filter domain=studio)")
    search.add_argument("--one-per-video", action="store_true", help="at most one hit per video (group_by)")
    search.add_argument("--json", action="store_true", help="print hits as JSON")

    evaluate = commands.add_parser("evaluate", help="retrieval metrics with bootstrap CIs; writes CSV and JSON")
    evaluate.add_argument("--embeddings", default=None, help="an embeddings folder (skip extraction)")
    evaluate.add_argument("--dataset", default=None, choices=[None, "folder", "manifest", "ucf101", "hmdb51", "kinetics"])
    evaluate.add_argument("--root", default=None, help="dataset root (with --dataset)")
    evaluate.add_argument("--split", type=positive_int("--split"), default=1, help="official split number")
    evaluate.add_argument("--protocol", default="all", choices=["all", "leave-one-out", "domains", "train-test"],
                          help="all = every protocol the data supports")
    evaluate.add_argument("--out", default=str(config.PROCESSED_DIR / "evaluation"))
    evaluate.add_argument("--n-boot", type=positive_int("--n-boot"), default=1000)
    _add_encoder_args(evaluate)
    evaluate.add_argument("--clips-per-video", type=positive_int("--clips-per-video"), default=4)

    report = commands.add_parser("report", help="run the notebooks with papermill; write reports/*.html")
    report.add_argument("--out", default=str(config.REPORTS_DIR))
    report.add_argument("--videos", default=str(config.SAMPLE_VIDEOS_DIR), help="sample folder used when no --source")
    report.add_argument("--source", default="", help="folder or manifest CSV to report on")
    report.add_argument("--encoder", default="auto")
    report.add_argument("--only", default="", help="comma-separated notebook prefixes, e.g. 01,02")
    report.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="extra notebook parameter (JSON value), repeatable")
    report.add_argument("--extra-embeddings", action="append", default=[], metavar="NAME=DIR",
                        help="another encoder's embeddings of the same clips for notebook 06's hybrid, e.g. "
                             "visual=data/interim/embeddings_clip (repeatable)")

    from .cli_beyond import add_subcommands

    add_subcommands(commands)  # calibrate | train-head | hybrid-index
    return parser


def _parse_filters(pairs: list[str]) -> dict:
    filters: dict[str, list[str]] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field:
            raise ParameterError(f"--filter expects FIELD=VALUE, got {pair!r}")
        filters.setdefault(field.strip(), []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in filters.items()}


def cmd_generate_sample(args) -> int:
    from .synthetic import generate_sample_dataset

    import pandas as pd

    from .synthetic import DOMAINS, MOTION_CLASSES

    manifest = Path(args.out) / "manifest.csv"
    expected = len(MOTION_CLASSES) * len(DOMAINS) * args.videos_per_class
    if manifest.exists():
        present = len(pd.read_csv(manifest))
        if present == expected:
            print(f"sample set already present: {manifest} ({present} videos)")
            return 0
        print(f"{manifest} lists {present} videos, {expected} were asked for: generating the sample set again")
    path = generate_sample_dataset(args.out, seed=args.seed, videos_per_class_per_domain=args.videos_per_class,
                                   groups_per_class_per_domain=args.groups_per_class)
    print(f"wrote {path}")
    return 0


def cmd_extract(args) -> int:
    from .clips import ClipSpec
    from .encoders.auto import choose_encoder
    from .pipeline import extract_embeddings, load_source

    manifest, failures = load_source(args.source, dataset=args.dataset)  # checks the path before loading a model
    if len(manifest) == 0 and not failures:
        raise ParameterError(f"no videos found in {args.source} (looked for {', '.join(config.VIDEO_EXTENSIONS)})")
    encoder, note = choose_encoder(args.encoder, model_id=args.model, device=args.device)
    print(f"encoder: {note}")
    spec = ClipSpec(frames_per_clip=args.frames_per_clip or encoder.frames_per_clip,
                    frame_stride=args.frame_stride, clips_per_video=args.clips_per_video)
    summary = extract_embeddings(manifest, encoder, args.out, clip_spec=spec, batch_size=args.batch_size,
                                 workers=args.workers, overwrite=args.overwrite, prune=args.prune,
                                 discovery_failures=failures)
    print(summary)
    return 0


def _read_meta(embeddings_dir: str | Path) -> dict:
    meta = Path(embeddings_dir) / "extract_meta.json"
    if not meta.exists():
        raise ParameterError(f"{embeddings_dir} has no extract_meta.json — run `motionmatch extract` first")
    return json.loads(meta.read_text())


def cmd_index(args) -> int:
    from .pipeline import index_embeddings, load_embeddings
    from .store import MotionStore

    meta = _read_meta(args.embeddings)
    table = load_embeddings(args.embeddings)
    with MotionStore(args.milvus_uri, args.collection) as store:  # unreachable URI fails here, before work
        if args.recreate:
            store.drop()
        summary = index_embeddings(table, store, encoder_id=meta["encoder_id"], preprocessing=meta["preprocessing"],
                                   remove_missing=args.remove_missing, clip_spec=meta["clip_spec"])
    print(summary)
    return 0


def cmd_search(args) -> int:
    from .clips import ClipSpec, sample_clips
    from .encoders.auto import encoder_from_id
    from .store import MotionStore

    filters = _parse_filters(args.filter)
    with MotionStore(args.milvus_uri, args.collection) as store:
        info = store.encoder_info()
        encoder = encoder_from_id(info["encoder_id"])
        spec = ClipSpec(**info["clip_spec"]) if info.get("clip_spec") else ClipSpec(frames_per_clip=encoder.frames_per_clip)
        clips = sample_clips(args.query, spec)
        middle = clips[len(clips) // 2]
        vector = encoder.encode([middle.frames])
        hits = store.search(vector, k=args.k, filters=filters or None, group_by_video=args.one_per_video,
                            encoder_id=encoder.encoder_id, preprocessing=encoder.preprocessing())[0]
    if args.json:
        print(json.dumps([h.__dict__ for h in hits], indent=2))
    else:
        print(f"query: {args.query} [{middle.window.start_s:.2f}-{middle.window.end_s:.2f} s] encoder {encoder.encoder_id}")
        for rank, hit in enumerate(hits, 1):
            print(f"{rank:3d}  {hit.score:.4f}  {hit.label:<18} {hit.domain:<10} {hit.video_path} "
                  f"[{hit.start_s:.2f}-{hit.end_s:.2f} s]")
        print(f"{len(hits)} hits")
    return 0


def cmd_evaluate(args) -> int:
    from .findings import format_headline, run_findings, write_findings
    from .pipeline import load_embeddings

    if args.embeddings:
        embeddings_dir = Path(args.embeddings)
    elif args.dataset and args.root:
        from .clips import ClipSpec
        from .encoders.auto import choose_encoder
        from .pipeline import extract_embeddings, load_source

        kwargs = {"split": args.split} if args.dataset in ("ucf101", "hmdb51") else {}
        manifest, failures = load_source(args.root, dataset=args.dataset, **kwargs)
        encoder, note = choose_encoder(args.encoder, model_id=args.model, device=args.device)
        print(f"encoder: {note}")
        slug = encoder.encoder_id.replace(":", "_").replace("/", "_")
        embeddings_dir = config.INTERIM_DIR / "embeddings" / f"{args.dataset}-split{args.split}-{slug}"
        spec = ClipSpec(frames_per_clip=encoder.frames_per_clip, clips_per_video=args.clips_per_video)
        print(extract_embeddings(manifest, encoder, embeddings_dir, clip_spec=spec, discovery_failures=failures))
    else:
        raise ParameterError("evaluate needs --embeddings DIR, or --dataset NAME with --root PATH")
    table = load_embeddings(embeddings_dir)
    found = run_findings(table, protocol=args.protocol, n_boot=args.n_boot)
    written = write_findings(found, args.out)
    from .encoders.auto import describe_encoder

    print(f"encoder: {describe_encoder(found.encoder_id)}")
    print(f"{found.n_clips} clips from {found.n_videos} videos; means with 95% bootstrap CIs over queries")
    print(format_headline(found))
    print(f"wrote {len(written)} files to {args.out}")
    return 0


def cmd_report(args) -> int:
    from .report import run_all

    parameters = {"encoder": args.encoder, "sample_dir": str(Path(args.videos).resolve()),
                  "source": str(Path(args.source).resolve()) if args.source else ""}
    for pair in args.param:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ParameterError(f"--param expects NAME=VALUE, got {pair!r}")
        try:
            parameters[name] = json.loads(value)
        except json.JSONDecodeError:
            parameters[name] = value
    extra = {}
    for pair in args.extra_embeddings:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not (Path(folder) / "extract_meta.json").is_file():
            raise ParameterError(f"--extra-embeddings expects NAME=DIR with DIR an embeddings folder written by "
                                 f"`motionmatch extract` (it holds extract_meta.json); got {pair!r}")
        extra[name] = str(Path(folder).resolve())
    if extra:
        parameters["extra_embeddings"] = extra
    only = [p for p in args.only.split(",") if p]
    done = run_all(args.out, parameters, only=only)
    print(f"wrote {len(done)} reports to {args.out}: " + ", ".join(p.with_suffix('.html').name for p in done))
    print(format_recorded_values(done))
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


COMMANDS = {"generate-sample": cmd_generate_sample, "extract": cmd_extract, "index": cmd_index,
            "search": cmd_search, "evaluate": cmd_evaluate, "report": cmd_report}
from .cli_beyond import COMMANDS as BEYOND_COMMANDS  # noqa: E402  (beyond-zero-shot commands)

COMMANDS.update(BEYOND_COMMANDS)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except MotionMatchError as err:
        print(f"motionmatch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished videos are saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
