"""`motionmatch milvus-server`: run the C++ Milvus standalone of the `milvus` wheel in the foreground.

It starts :func:`motionmatch.index.standalone.start_standalone` on a data folder (config's ``milvus_server_dir``,
``MOTIONMATCH_MILVUS_SERVER_DIR``), prints the URI to give every other command (``--milvus-uri`` or
``MOTIONMATCH_MILVUS_URI``), and serves until Ctrl-C or SIGTERM, then stops the server (SIGTERM, then
SIGKILL). Restarting on the same folder serves the same collections. By default the server runs in a
network namespace of its own, reachable from this machine only (see :mod:`motionmatch.index.netns`).
"""
from __future__ import annotations

import signal
import threading

from .. import config
from .args import Command, positive_float, positive_int


class MilvusServer(Command):
    name = "milvus-server"
    help = "run the C++ Milvus standalone (pip install -e .[server]) on 127.0.0.1 until Ctrl-C"

    @staticmethod
    def setup(parser):
        parser.add_argument("--data", default="", help="its data folder (default: config's milvus_server_dir, "
                                                       f"{config.setting('milvus_server_dir')})")
        parser.add_argument("--port", type=positive_int("--port"), default=None,
                            help="the gRPC port on 127.0.0.1 (default: a free one; 19530 is Milvus' usual)")
        parser.add_argument("--network", choices=["auto", "namespace", "host"], default="auto",
                            help="namespace: only this machine reaches it; host: every interface (Milvus 2.3.5 "
                                 "cannot bind loopback); auto: a namespace where the kernel allows one")
        parser.add_argument("--start-timeout", type=positive_float("--start-timeout"), default=180.0,
                            help="seconds to wait for it to answer (default: %(default)s)")

    @staticmethod
    def execute(args):
        from ..index.standalone import start_standalone

        folder = config.setting("milvus_server_dir", args.data)
        print(f"starting the Milvus standalone on {folder} (about 10-45 s) ...", flush=True)
        server = start_standalone(folder, port=args.port, start_timeout_s=args.start_timeout, network=args.network)
        stop = threading.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
        reach = "this machine only" if server.network == "namespace" else "every interface: keep inbound ports closed"
        print(f"Milvus {server.version} ready at {server.uri} (reachable from {reach}; data in {server.data_dir})\n"
              f"  export MOTIONMATCH_MILVUS_URI={server.uri}   # or --milvus-uri {server.uri}\n"
              f"  Ctrl-C stops it", flush=True)
        try:
            while not stop.wait(1.0):
                if not server.running():
                    print(f"the Milvus standalone exited; its log:\n{server.log_tail()}", flush=True)
                    return 1
        finally:
            server.stop()
        print("stopped", flush=True)
        return 0


SERVER_COMMANDS = [MilvusServer]
