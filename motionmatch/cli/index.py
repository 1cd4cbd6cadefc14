"""``motionmatch index``: upsert an extraction run into Milvus (idempotent), with its clip spec and calibration."""
from __future__ import annotations

from .args import Command, add_embeddings_arg, add_store_args


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
        from ..index.sync import index

        print(index(args.embeddings, args.milvus_uri, args.collection, recreate=args.recreate,
                    remove_missing=args.remove_missing, bulk=args.bulk, bulk_dir=args.bulk_dir or None))
        return 0


INDEX_COMMANDS = [Index]
