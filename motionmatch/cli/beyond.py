"""`motionmatch calibrate | train-head | hybrid-index`: the beyond-zero-shot steps without a notebook.

- ``calibrate`` fits mean-centring or PCA whitening on an embeddings table (the gallery) and
  saves it with ``ScoreCalibration.save`` (an ``.npz``); it prints what it does to the
  0.95-0.98 score bunching.
- ``train-head`` trains a projection head (triplet or NT-Xent) with a group-held-out validation split
  and saves it with ``TrainedHead.save``.
- ``hybrid-index`` writes a multi-vector Milvus collection (calibrated embedding + head projection
  [+ other encoders' embeddings]) and stores the calibration and head *with* the collection, so
  every client embeds queries the same way.

``motionmatch.cli`` registers :data:`BEYOND_COMMANDS`; :func:`add_subcommands` and :data:`COMMANDS`
let another parser (a test) do the same.
"""
from __future__ import annotations


from .. import config
from .args import (Command, add_embeddings_arg, add_store_args, embeddings_dir, non_negative_int, parse_pairs,
                       positive_float, positive_int, register)
from ..errors import ParameterError
from ..table import embedding_matrix, load_embeddings, read_extract_meta

DEFAULT_CALIBRATION_PATH = config.INTERIM_DIR / "calibration.npz"
DEFAULT_HEAD_PATH = config.INTERIM_DIR / "head.pt"


class Calibrate(Command):
    name = "calibrate"
    help = "fit mean-centring / PCA whitening on an embeddings table (.npz)"

    @staticmethod
    def setup(parser):
        add_embeddings_arg(parser)
        parser.add_argument("--mode", default="center", choices=["center", "whiten"])
        parser.add_argument("--n-components", type=non_negative_int("--n-components"), default=0,
                            help="whitening dimensions; 0 = all with variance")
        parser.add_argument("--out", default=str(DEFAULT_CALIBRATION_PATH), help="output .npz (default: %(default)s)")

    @staticmethod
    def execute(args):
        from ..refine.calibrate import ScoreCalibration, score_spread

        if args.n_components and args.mode != "whiten":
            raise ParameterError(f"--n-components {args.n_components}: give 0 (all), or a positive number with --mode whiten")
        table = load_embeddings(embeddings_dir(args))
        calibration = ScoreCalibration(mode=args.mode, n_components=args.n_components or None).fit_on_table(table)
        path = calibration.save(args.out)
        vectors = embedding_matrix(table)
        before, after = score_spread(vectors), score_spread(calibration.transform(vectors))
        print(f"{calibration!r} -> {calibration.output_dim}-d vectors, encoder_id {calibration.output_encoder_id}")
        for name, spread in (("before", before), ("after", after)):
            print(f"  {name:6s} pair cosines: median {spread['q50']:.3f}, 5-95% [{spread['q05']:.3f}, {spread['q95']:.3f}], "
                  f"share in [0.95, 0.98] {spread['frac_in_095_098']:.1%}")
        print(f"wrote {path}")
        return 0


class TrainHead(Command):
    name = "train-head"
    help = "train a projection head (triplet / NT-Xent) on an embeddings table"

    @staticmethod
    def setup(parser):
        add_embeddings_arg(parser)
        parser.add_argument("--loss", default="triplet", choices=["triplet", "ntxent"])
        parser.add_argument("--margin", type=positive_float("--margin"), default=0.2, help="triplet margin")
        parser.add_argument("--temperature", type=positive_float("--temperature"), default=0.07, help="NT-Xent temperature")
        parser.add_argument("--miner", default="semihard", choices=["semihard", "hard", "all", "batch-hard"])
        parser.add_argument("--out-dim", type=non_negative_int("--out-dim"), default=0,
                            help="output dimension; 0 = min(512, input)")
        parser.add_argument("--hidden-dim", type=non_negative_int("--hidden-dim"), default=0, help="0 = one linear layer")
        parser.add_argument("--max-epochs", type=positive_int("--max-epochs"), default=50)
        parser.add_argument("--val-fraction", type=float, default=0.2, help="share of groups held out for early stopping")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", default=str(DEFAULT_HEAD_PATH), help="output file (default: %(default)s)")

    @staticmethod
    def execute(args):
        from ..refine.heads import HeadTrainingConfig, train_projection_head

        settings = HeadTrainingConfig(loss=args.loss, margin=args.margin, temperature=args.temperature,
                                      triplet_miner=args.miner, out_dim=args.out_dim or None,
                                      hidden_dim=args.hidden_dim or None, max_epochs=args.max_epochs,
                                      val_fraction=args.val_fraction, seed=args.seed)
        trained = train_projection_head(load_embeddings(embeddings_dir(args)), settings)
        path = trained.save(args.out)
        best = next((h for h in trained.history if h["epoch"] == trained.best_epoch), {})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in best.items() if k != "epoch")
        print(f"trained a {trained.in_dim}->{trained.out_dim} {args.loss} head for {len(trained.history)} epochs; "
              f"kept epoch {trained.best_epoch} ({shown})")
        print(f"wrote {path}")
        return 0


class HybridIndex(Command):
    name = "hybrid-index"
    help = "index calibrated + head-projected vectors as one multi-vector collection; store the transforms with it"

    @staticmethod
    def setup(parser):
        add_embeddings_arg(parser)
        parser.add_argument("--calibration", default="", help="a .npz from `motionmatch calibrate` (none: raw vectors)")
        parser.add_argument("--head", default=str(DEFAULT_HEAD_PATH), help="a head from `motionmatch train-head`")
        parser.add_argument("--extra", action="append", default=[], metavar="NAME=EMBEDDINGS_DIR",
                            help="another encoder's embeddings of the same videos as field NAME (e.g. visual=...), repeatable")
        add_store_args(parser, collection_setting="hybrid_collection")

    @staticmethod
    def execute(args):
        from ..beyond import FittedVectors, VectorSpec, attach_extra_vectors, index_hybrid
        from ..refine.calibrate import ScoreCalibration
        from ..refine.heads import TrainedHead
        from ..index.store import MotionStore

        folder = embeddings_dir(args)
        meta = read_extract_meta(folder)
        table = load_embeddings(folder)
        encoder_id = meta["encoder_id"]
        head = TrainedHead.load(args.head, expected_encoder_id=encoder_id)
        fields = []
        if args.calibration:
            calibration = ScoreCalibration.load(args.calibration)
            if calibration.encoder_id and calibration.encoder_id != encoder_id:
                raise ParameterError(f"{args.calibration} was fitted on {calibration.encoder_id!r}, but {folder} "
                                     f"holds {encoder_id!r}; run `motionmatch calibrate --embeddings {folder}`")
            fields.append(FittedVectors(VectorSpec(calibration.mode, n_components=calibration.n_components), calibration))
        else:
            fields.append(FittedVectors(VectorSpec("raw"), None))
        fields.append(FittedVectors(VectorSpec("head", head=head.config), head))
        extras = {}
        for name, extra_folder in parse_pairs(args.extra, "--extra", "NAME=EMBEDDINGS_DIR"):
            if not extra_folder:
                raise ParameterError(f"--extra expects NAME=EMBEDDINGS_DIR, got {name}=")
            extras[name] = load_embeddings(extra_folder)
            fields.append(FittedVectors(VectorSpec("raw", column=name), None))
        table = attach_extra_vectors(table, extras)
        preprocessing = {"base_encoder": encoder_id, "base_preprocessing": meta["preprocessing"],
                         "hybrid_fields": [f.spec.label for f in fields]}
        collection = config.setting("hybrid_collection", args.collection)
        with MotionStore(args.milvus_uri, collection) as store:
            summary = index_hybrid(table, store, fields, preprocessing, recreate=True, clip_spec=meta.get("clip_spec"))
        print(f"{collection} @ {store.uri}: {summary['rows']} clips, fields "
              + ", ".join(f"{n} ({d}-d)" for n, d in summary["fields"].items()))
        print(f"stored with the collection: {', '.join(summary['arrays'])}")
        return 0


BEYOND_COMMANDS = (Calibrate, TrainHead, HybridIndex)


def add_subcommands(subparsers) -> None:
    """Add ``calibrate``, ``train-head`` and ``hybrid-index`` to ``subparsers``."""
    register(subparsers, BEYOND_COMMANDS)


COMMANDS = {command.name: command.execute for command in BEYOND_COMMANDS}  # name -> execute(args) -> exit code
