"""Start and stop a real C++ Milvus standalone on loopback (the server in the ``milvus`` wheel, v2.3.5).

The ``milvus`` package on PyPI (``pip install -e .[server]``) ships Milvus standalone — the C++
engine (knowhere), embedded etcd and RocksMQ — compressed inside its Linux wheel. Its own launcher
(``milvus-server``) unpacks the binaries into every data folder, lets every component advertise the
first non-loopback address, and waits up to 180 s. :func:`start_standalone` drives the same binary
with the package's own config template, but:

* unpacks the binaries once per version into a cache folder (config's ``cache_dir``, ``MOTIONMATCH_CACHE_DIR``, default
  ``~/.cache/motionmatch/milvus-<version>``), shared by every data folder;
* gives the proxy a free port and sets every component's ``ip`` to ``127.0.0.1`` (:data:`LOOPBACK_KEYS`),
  so components talk over loopback and etcd listens on ``localhost`` only;
* **runs it in a network namespace of its own** (``network="namespace"``, :mod:`motionmatch.index.netns`):
  Milvus 2.3.5's gRPC servers (proxy, coordinators, nodes) and its health/metrics port listen on every
  interface (``[::]:PORT``) whatever ``ip`` says (measured: ``ip`` is only the advertised address, and
  2.3 has no listen-address setting). Inside the namespace the only interface is loopback, and the
  proxy and health ports are relayed from ``127.0.0.1`` on the host, so nothing else on the network can
  reach the server. ``network="auto"`` (the default) falls back to ``"host"`` with a warning where the
  kernel refuses unprivileged user namespaces; ``"host"`` runs it unwrapped (every interface);
* waits for ``/healthz`` *and* a real gRPC call, for at most ``start_timeout_s``; a server that exits
  or does not answer in time is killed and the error carries the tail of its log;
* stops with SIGTERM and, after a short grace (a busy 2.3 server was seen to take > 20 s), SIGKILL.
  Data written before an acknowledged call survives a SIGKILL (it is in the RocksMQ WAL and etcd).

Use it as a context manager::

    with start_standalone("data/interim/milvus_standalone") as server:
        store = MotionStore(server.uri, "clips")
"""
from __future__ import annotations

import atexit
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from .. import config
from . import netns
from ..errors import MissingPackageError, StoreError

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT_S = 180.0  # about 45 s on 2 cores; the launcher's own limit is 180 s
STOP_GRACE_S = 3.0  # SIGTERM, then SIGKILL after this many seconds
# Components whose gRPC servers would otherwise advertise the first non-loopback address.
LOOPBACK_KEYS = ("rootCoord.ip", "proxy.ip", "queryCoord.ip", "queryNode.ip", "indexNode.ip", "dataCoord.ip",
                 "dataNode.ip")
NETWORKS = ("auto", "namespace", "host")
INSTALL_HINT = "pip install -e .[server]  (the `milvus` wheel ships the C++ Milvus standalone, Linux/macOS)"

_running: "weakref.WeakSet[StandaloneServer]" = weakref.WeakSet()


def milvus_package():
    """The ``milvus`` package (its launcher and compressed binaries); MissingPackageError when absent."""
    try:
        import milvus  # noqa: PLC0415 - optional extra
    except ImportError as error:
        raise MissingPackageError(f"the C++ Milvus standalone needs the `milvus` package: {INSTALL_HINT}") from error
    return milvus


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binaries_dir() -> Path:
    """The unpacked ``milvus`` binary and its libraries (unpacked once per version, under a file lock)."""
    milvus = milvus_package()
    cache = Path(config.setting("cache_dir")).expanduser() / f"milvus-{milvus.__version__}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        milvus._initialize_data_files(str(cache))  # noqa: SLF001 - the package's own unpacker (md5-checked)
    return cache / "bin"


@dataclass(eq=False)
class StandaloneServer:
    """A Milvus standalone on loopback: ``uri`` for MotionStore; ``stop()``, ``kill()``, ``restart()``."""

    data_dir: Path  # configs/ (milvus.yaml written once), logs/, data/ (etcd, rocksmq, segments)
    port: int  # the proxy's gRPC port
    health_port: int  # /healthz and /metrics
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    network: str = "namespace"  # "namespace": reachable only through the host's 127.0.0.1; "host": every interface
    process: subprocess.Popen | None = field(default=None, repr=False)  # the launcher in namespace mode
    server_pid: int | None = None  # the milvus process itself
    version: str = ""  # e.g. "v2.3.5-lite" once started

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "milvus-stdout.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "StandaloneServer":
        """Launch the binary on the written config; return once /healthz and a gRPC call answer.

        StoreError (with the log tail) when it exits or does not answer within ``start_timeout_s``.
        """
        if self.running():
            return self
        bin_dir = binaries_dir()
        env = {**os.environ, "DEPLOY_MODE": "STANDALONE", "METRICS_PORT": str(self.health_port),
               "MILVUS_RUN_DIR": str(self.data_dir / "run"), "MILVUSCONF": str(self.data_dir / "configs"),
               "LD_LIBRARY_PATH": ":".join(p for p in (str(bin_dir), os.environ.get("LD_LIBRARY_PATH", "")) if p)}
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        command, listeners = [str(bin_dir / "milvus"), "run", "standalone"], []
        pid_file = self.data_dir / "run" / "namespaced-milvus.pid"
        if self.network == "namespace":  # relay the proxy and health ports from the host's loopback
            listeners = [_loopback_listener(port, self.data_dir) for port in (self.port, self.health_port)]
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.unlink(missing_ok=True)
            command = [*netns.launcher(),
                       *[f"--forward={sock.fileno()}:{port}" for sock, port in zip(listeners, (self.port,
                                                                                          self.health_port))],
                       f"--pid-file={pid_file}", "--", *command]
        try:
            with open(logs / "milvus-stdout.log", "ab") as out, open(logs / "milvus-stderr.log", "ab") as err:
                self.process = subprocess.Popen(command, cwd=self.data_dir, env=env, stdout=out, stderr=err,
                                                stdin=subprocess.DEVNULL, pass_fds=[s.fileno() for s in listeners],
                                                start_new_session=True)  # a terminal's Ctrl-C does not reach it
        finally:
            for sock in listeners:  # the launcher holds its own copies
                sock.close()
        self.server_pid = None if self.network == "namespace" else self.process.pid
        _running.add(self)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline and self.running():
            if self.server_pid is None and pid_file.exists() and pid_file.read_text().strip():
                self.server_pid = int(pid_file.read_text())
            if _healthy(self.health_port):
                version = _server_version(self.uri)
                if version:
                    self.version = version
                    if self.server_pid is None:  # written by the launcher before the server could answer
                        self.server_pid = int(pid_file.read_text())
                    return self
            time.sleep(0.5)
        exited = not self.running()
        code = self.process.returncode
        self.stop(grace_s=0)
        what = f"exited with code {code}" if exited else f"did not answer within {self.start_timeout_s:.0f} s"
        raise StoreError(f"Milvus standalone for {self.data_dir} on port {self.port} {what}. Check that its ports "
                         f"(configs/milvus.yaml) are free and no other server uses the data folder; its log:\n"
                         f"{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL at once (what a crash or an out-of-memory kill does); return once the server is gone."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()  # in namespace mode the server gets SIGKILL with its launcher (PDEATHSIG)
            self.process.wait(timeout=30)
        if self.server_pid is not None:
            _wait_gone(self.server_pid, timeout_s=30)
        _running.discard(self)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` seconds."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def restart(self) -> "StandaloneServer":
        """Stop (if running) and start again on the same data folder, ports and config."""
        self.stop()
        return self.start()

    def log_tail(self, chars: int = 3000) -> str:
        parts = []
        for path in (self.log_path, self.data_dir / "logs" / "milvus-stderr.log"):
            if path.exists():
                parts.append(f"--- {path}\n" + path.read_text(errors="replace")[-chars:])
        return "\n".join(parts)

    def __enter__(self) -> "StandaloneServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _loopback_listener(port: int, data_dir: Path) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        sock.close()
        raise StoreError(f"cannot listen on 127.0.0.1:{port} for the Milvus standalone in {data_dir}: {error}. "
                         f"Another process holds the port: stop it, or start the server on another port") from error
    sock.listen(128)
    return sock


def _wait_gone(pid: int, timeout_s: float) -> None:
    import psutil  # noqa: PLC0415

    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired as error:
        raise StoreError(f"Milvus standalone (pid {pid}) is still running {timeout_s:.0f} s after SIGKILL") from error


def _write_config(milvus, data_dir: Path, port: int) -> None:
    """configs/milvus.yaml from the package's template: the proxy on ``port``, every component on loopback."""
    config = milvus.MilvusServerConfig(data_dir=str(data_dir), proxy_port=port)
    for key in LOOPBACK_KEYS:
        config.set(key, "127.0.0.1")
    try:
        config.resolve()  # picks free ports for the other components, writes configs/milvus.yaml and glog.conf
    except RuntimeError as error:  # "set proxy_port=P, but bind failed"
        raise StoreError(f"cannot start the Milvus standalone for {data_dir} on 127.0.0.1:{port}: {error}. Another "
                         f"process holds the port: stop it, or start the server on another port") from error
    # The embedded etcd ignores the client port above and always listens on 2379/2380 unless given its own config
    # file (`etcd.config.path`, which the template lacks): without it a second server on the machine cannot start.
    client, peer = int(config.get("etcd_port")), free_port()
    etcd_yaml = data_dir / "configs" / "etcd.yaml"
    etcd_yaml.write_text(f"name: default\nlisten-client-urls: http://127.0.0.1:{client}\n"
                         f"advertise-client-urls: http://127.0.0.1:{client}\nlisten-peer-urls: http://127.0.0.1:{peer}\n"
                         f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
                         f"initial-cluster: default=http://127.0.0.1:{peer}\n")
    milvus_yaml = data_dir / "configs" / "milvus.yaml"
    text = milvus_yaml.read_text()
    if "\netcd:\n" not in text:
        raise StoreError(f"unexpected Milvus config template ({milvus_yaml} has no top-level 'etcd:' section); "
                         f"reinstall the pinned server package: {INSTALL_HINT}")
    milvus_yaml.write_text(text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_yaml}\n", 1))


def _healthy(health_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=2) as response:
            return b"OK" in response.read()
    except OSError:
        return False


def _server_version(uri: str) -> str | None:
    """The server's version once its proxy answers a real call, else None."""
    from pymilvus import MilvusClient

    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)  # pymilvus logs every refused connection attempt
    try:
        client = MilvusClient(uri=uri, timeout=5)
        try:
            client.list_collections()
            return str(client.get_server_version())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - not up yet
        return None
    finally:
        logging.disable(previous)


def start_standalone(data_dir: str | Path, port: int | None = None,
                     start_timeout_s: float = DEFAULT_START_TIMEOUT_S, network: str = "auto") -> StandaloneServer:
    """Start Milvus standalone on 127.0.0.1 with its data in ``data_dir``; return once it answers.

    ``network``: ``"namespace"`` (only the host's 127.0.0.1 reaches it), ``"host"`` (it listens on every
    interface: Milvus 2.3.5 cannot be bound), or ``"auto"``: a namespace where the kernel allows one.

    Restarting on the same ``data_dir`` serves the same collections. Raises StoreError (with the
    log tail) when the server exits or does not answer within ``start_timeout_s``;
    MissingPackageError when the ``milvus`` package is not installed.
    """
    milvus = milvus_package()
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
    if network != "host":
        refused = netns.isolation_error()
        if refused and network == "namespace":
            raise StoreError(f"cannot run the Milvus standalone in its own network namespace: {refused}. Allow "
                             f"unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), or pass "
                             f"network='host' behind a firewall")
        if refused:
            log.warning("Milvus 2.3.5 will listen on every interface (it cannot be bound to loopback) because "
                        "no network namespace can be made here: %s. Run it behind a firewall.", refused)
        network = "host" if refused else "namespace"
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    _write_config(milvus, data_dir, port)
    server = StandaloneServer(data_dir, port, free_port(), start_timeout_s=start_timeout_s, network=network)
    server.start()
    return server


def listening_addresses(server: StandaloneServer) -> dict[str, list[tuple[str, int]]]:
    """What the server listens on: ``{"host": [...], "server": [...]}``, (address, port) pairs.

    ``host``: the sockets its processes hold in the caller's network namespace (in namespace mode only the
    launcher's two relays on 127.0.0.1); ``server``: what the milvus process listens on in its own
    namespace (the same sockets in host mode).
    """
    import psutil  # noqa: PLC0415

    pids = {pid for pid in (server.server_pid, server.process.pid if server.process else None) if pid}
    host = sorted({(c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="tcp")
                   if c.status == psutil.CONN_LISTEN and c.pid in pids})
    inside = netns.listening_sockets(server.server_pid) if server.network == "namespace" and server.server_pid else host
    return {"host": host, "server": inside}


@atexit.register
def _stop_all() -> None:  # pragma: no cover - interpreter exit
    for server in list(_running):
        try:
            server.stop(grace_s=1.0)
        except Exception:  # noqa: BLE001
            pass
