"""`motionmatch calibrate | train-head | hybrid-index`: the beyond-zero-shot steps without a notebook.

- ``calibrate`` fits mean-centring or PCA whitening on an embeddings table (the gallery) and
  writes it to an ``.npz`` file; it prints what it does to the 0.95-0.98 score bunching.
- ``train-head`` trains a projection head (triplet or NT-Xent) with a group-held-out validation split
  and saves it with ``TrainedHead.save``.
- ``hybrid-index`` writes a multi-vector Milvus collection (calibrated embedding + head projection
  [+ other encoders' embeddings]) and stores the calibration and head *with* the collection, so
  every client embeds queries the same way.

Wire into ``motionmatch.cli``: ``add_subcommands(commands)`` in ``build_parser`` and
``COMMANDS.update(BEYOND_COMMANDS)``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import config
from .cli_args import DEFAULT_EMBEDDINGS_DIR, positive_float, positive_int
from .errors import ParameterError

DEFAULT_CALIBRATION_PATH = config.INTERIM_DIR / "calibration.npz"
DEFAULT_HEAD_PATH = config.INTERIM_DIR / "head.pt"
DEFAULT_HYBRID_COLLECTION = "motionmatch_hybrid"


def add_subcommands(subparsers) -> None:
    """Add ``calibrate``, ``train-head`` and ``hybrid-index`` to the ``motionmatch`` sub-parsers."""
    calibrate = subparsers.add_parser("calibrate", help="fit mean-centring / PCA whitening on an embeddings table (.npz)")
    calibrate.add_argument("--embeddings", default=str(DEFAULT_EMBEDDINGS_DIR), help="embeddings folder (default: %(default)s)")
    calibrate.add_argument("--mode", default="center", choices=["center", "whiten"])
    calibrate.add_argument("--n-components", type=int, default=0, help="whitening dimensions; 0 = all with variance")
    calibrate.add_argument("--out", default=str(DEFAULT_CALIBRATION_PATH), help="output .npz (default: %(default)s)")

    head = subparsers.add_parser("train-head", help="train a projection head (triplet / NT-Xent) on an embeddings table")
    head.add_argument("--embeddings", default=str(DEFAULT_EMBEDDINGS_DIR), help="embeddings folder (default: %(default)s)")
    head.add_argument("--loss", default="triplet", choices=["triplet", "ntxent"])
    head.add_argument("--margin", type=positive_float("--margin"), default=0.2, help="triplet margin")
    head.add_argument("--temperature", type=positive_float("--temperature"), default=0.07, help="NT-Xent temperature")
    head.add_argument("--miner", default="semihard", choices=["semihard", "hard", "all", "batch-hard"])
    head.add_argument("--out-dim", type=int, default=0, help="output dimension; 0 = min(512, input)")
    head.add_argument("--hidden-dim", type=int, default=0, help="0 = one linear layer")
    head.add_argument("--max-epochs", type=positive_int("--max-epochs"), default=50)
    head.add_argument("--val-fraction", type=float, default=0.2, help="share of groups held out for early stopping")
    head.add_argument("--seed", type=int, default=0)
    head.add_argument("--out", default=str(DEFAULT_HEAD_PATH), help="output file (default: %(default)s)")

    hybrid = subparsers.add_parser("hybrid-index", help="index calibrated + head-projected vectors as one multi-vector "
                                                        "collection; store the transforms with it")
    hybrid.add_argument("--embeddings", default=str(DEFAULT_EMBEDDINGS_DIR), help="embeddings folder (default: %(default)s)")
    hybrid.add_argument("--calibration", default="", help="a .npz from `motionmatch calibrate` (none: raw vectors)")
    hybrid.add_argument("--head", default=str(DEFAULT_HEAD_PATH), help="a head from `motionmatch train-head`")
    hybrid.add_argument("--extra", action="append", default=[], metavar="NAME=EMBEDDINGS_DIR",
                        help="another encoder's embeddings of the same videos as field NAME (e.g. visual=...), repeatable")
    hybrid.add_argument("--milvus-uri", default=config.DEFAULT_MILVUS_URI,
                        help="Milvus Lite .db file or http://host:19530 (default: %(default)s)")
    hybrid.add_argument("--collection", default=DEFAULT_HYBRID_COLLECTION, help="collection name (default: %(default)s)")


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write named arrays (e.g. ScoreCalibration.to_arrays()) to one .npz file."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ParameterError(f"{path}: the calibration file must end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read arrays written by :func:`save_arrays`."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{path}: no such calibration file; write one with `motionmatch calibrate --out {path}`")
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def _read_meta(embeddings_dir: str | Path) -> dict:
    meta = Path(embeddings_dir) / "extract_meta.json"
    if not meta.exists():
        raise ParameterError(f"{embeddings_dir} has no extract_meta.json — run `motionmatch extract` first")
    return json.loads(meta.read_text())


def cmd_calibrate(args) -> int:
    from .calibrate import ScoreCalibration, score_spread, table_vectors
    from .pipeline import load_embeddings

    if args.n_components < 0 or (args.n_components and args.mode != "whiten"):
        raise ParameterError(f"--n-components {args.n_components}: give 0 (all), or a positive number with --mode whiten")
    table = load_embeddings(args.embeddings)
    calibration = ScoreCalibration(mode=args.mode, n_components=args.n_components or None).fit_on_table(table)
    path = save_arrays(args.out, calibration.to_arrays())
    vectors = table_vectors(table)
    before, after = score_spread(vectors), score_spread(calibration.transform(vectors))
    print(f"{calibration!r} -> {calibration.output_dim}-d vectors, encoder_id {calibration.output_encoder_id}")
    for name, spread in (("before", before), ("after", after)):
        print(f"  {name:6s} pair cosines: median {spread['q50']:.3f}, 5-95% [{spread['q05']:.3f}, {spread['q95']:.3f}], "
              f"share in [0.95, 0.98] {spread['frac_in_095_098']:.1%}")
    print(f"wrote {path}")
    return 0


def cmd_train_head(args) -> int:
    from .metric_learning import HeadTrainingConfig, train_projection_head
    from .pipeline import load_embeddings

    if args.out_dim < 0 or args.hidden_dim < 0:
        raise ParameterError("--out-dim and --hidden-dim must be >= 0 (0 = default)")
    config_ = HeadTrainingConfig(loss=args.loss, margin=args.margin, temperature=args.temperature,
                                 triplet_miner=args.miner, out_dim=args.out_dim or None, hidden_dim=args.hidden_dim or None,
                                 max_epochs=args.max_epochs, val_fraction=args.val_fraction, seed=args.seed)
    table = load_embeddings(args.embeddings)
    trained = train_projection_head(table, config_)
    path = trained.save(args.out)
    best = next((h for h in trained.history if h["epoch"] == trained.best_epoch), {})
    shown = ", ".join(f"{k} {v:.4f}" for k, v in best.items() if k != "epoch")
    print(f"trained a {trained.in_dim}->{trained.out_dim} {args.loss} head for {len(trained.history)} epochs; "
          f"kept epoch {trained.best_epoch} ({shown})")
    print(f"wrote {path}")
    return 0


def cmd_hybrid_index(args) -> int:
    from .beyond import FittedVectors, VectorSpec, attach_extra_vectors, index_hybrid
    from .calibrate import ScoreCalibration
    from .metric_learning import TrainedHead
    from .pipeline import load_embeddings
    from .store import MotionStore

    meta = _read_meta(args.embeddings)
    table = load_embeddings(args.embeddings)
    encoder_id = meta["encoder_id"]
    head = TrainedHead.load(args.head, expected_encoder_id=encoder_id)
    fields = []
    if args.calibration:
        calibration = ScoreCalibration.from_arrays(load_arrays(args.calibration))
        if calibration.encoder_id and calibration.encoder_id != encoder_id:
            raise ParameterError(f"{args.calibration} was fitted on {calibration.encoder_id!r}, but {args.embeddings} "
                                 f"holds {encoder_id!r}; run `motionmatch calibrate --embeddings {args.embeddings}`")
        fields.append(FittedVectors(VectorSpec(calibration.mode, n_components=calibration.n_components), calibration))
    else:
        fields.append(FittedVectors(VectorSpec("raw"), None))
    fields.append(FittedVectors(VectorSpec("head", head=head.config), head))
    extras = {}
    for pair in args.extra:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise ParameterError(f"--extra expects NAME=EMBEDDINGS_DIR, got {pair!r}")
        extras[name] = load_embeddings(folder)
        fields.append(FittedVectors(VectorSpec("raw", column=name), None))
    table = attach_extra_vectors(table, extras)
    preprocessing = {"base_encoder": encoder_id, "base_preprocessing": meta["preprocessing"],
                     "hybrid_fields": [f.spec.label for f in fields]}
    with MotionStore(args.milvus_uri, args.collection) as store:
        summary = index_hybrid(table, store, fields, preprocessing, recreate=True, clip_spec=meta.get("clip_spec"))
    print(f"{args.collection} @ {args.milvus_uri}: {summary['rows']} clips, fields "
          + ", ".join(f"{n} ({d}-d)" for n, d in summary["fields"].items()))
    print(f"stored with the collection: {', '.join(summary['arrays'])}")
    return 0


COMMANDS = {"calibrate": cmd_calibrate, "train-head": cmd_train_head, "hybrid-index": cmd_hybrid_index}
BEYOND_COMMANDS = COMMANDS
