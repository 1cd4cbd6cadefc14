"""``motionmatch report``: run the numbered notebooks with papermill and write code-free HTML reports."""
from __future__ import annotations

import json
from pathlib import Path

from .. import config
from ..table import read_extract_meta
from .args import Command, add_store_args, parse_pairs


class Report(Command):
    name = "report"
    help = "run the notebooks with papermill; write reports/*.html"

    @staticmethod
    def setup(parser):
        parser.add_argument("--out", default=str(config.REPORTS_DIR))
        parser.add_argument("--videos", default="", help="sample folder used when no --source "
                                                         f"(default: $MOTIONMATCH_SAMPLE_DIR, else {config.SETTINGS['sample_dir'].default})")
        parser.add_argument("--source", default="", help="folder or manifest CSV to report on")
        parser.add_argument("--encoder", default="auto")
        parser.add_argument("--model", default="", metavar="DIR_OR_HUB_ID",
                            help="V-JEPA 2 checkpoint for the notebooks (parameter model_id; default: $MOTIONMATCH_MODEL, "
                                 f"else {config.HUB_MODEL_ID})")
        add_store_args(parser)
        parser.add_argument("--embeddings", default="", help="embeddings folder the notebooks write and read "
                                                             "(parameter embeddings_dir; default: $MOTIONMATCH_EMBEDDINGS_DIR)")
        parser.add_argument("--only", default="", help="comma-separated notebook prefixes, e.g. 01,02")
        parser.add_argument("--jobs", default="", help="notebooks run at once, each when the ones it needs are done "
                                                       "(default: $MOTIONMATCH_REPORT_JOBS, else "
                                                       f"{config.SETTINGS['report_jobs'].default})")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help="extra notebook parameter (JSON value), repeatable")
        parser.add_argument("--extra-embeddings", action="append", default=[], metavar="NAME=DIR",
                            help="another encoder's embeddings of the same clips for notebook 06's hybrid, e.g. "
                                 "visual=data/interim/embeddings_clip (repeatable)")

    @staticmethod
    def notebook_parameters(args) -> dict:
        """The parameters the notebooks get: each given value under its setting's name, made absolute by the
        setting's kind (:func:`motionmatch.config.absolute`: the kernel runs in notebooks/). Each notebook takes
        the ones it declares; notebooks 06 and 07 name their own collections and folders after their settings
        (``hybrid_collection``, ``long_collection``, ``long_embeddings_dir``), so ``--collection`` and
        ``--embeddings`` (the main index) never reach them."""
        parameters = {"encoder": args.encoder, "sample_dir": config.absolute("sample_dir",
                                                                             config.setting("sample_dir", args.videos)),
                      "source": str(Path(args.source).resolve()) if args.source else ""}
        for name, value in (("model_id", args.model), ("milvus_uri", args.milvus_uri),
                            ("collection", args.collection), ("embeddings_dir", args.embeddings)):
            if value:
                parameters[name] = config.absolute(name, value)
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
    def execute(args):
        import time

        from ..report.notebooks import format_timings, run_all

        only = [p for p in args.only.split(",") if p]
        started = time.perf_counter()
        done = run_all(args.out, Report.notebook_parameters(args), only=only or None, jobs=args.jobs or None)
        wall_s = time.perf_counter() - started
        print(f"wrote {len(done)} reports to {args.out}: " + ", ".join(p.with_suffix('.html').name for p in done))
        print(format_recorded_values(done))
        print(format_timings(done, wall_s=wall_s))
        return 0


def format_recorded_values(executed_notebooks) -> str:
    """The values each executed notebook recorded, as the run's closing summary."""
    from ..report.records import read_records

    lines = ["summary (values recorded by the notebooks):"]
    for notebook in executed_notebooks:
        for name, value in read_records(notebook).items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            lines.append(f"  {notebook.stem[:2]}  {name:<45} {shown}")
    return "\n".join(lines)


REPORT_COMMANDS = [Report]
