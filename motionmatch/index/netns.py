"""Run a server in a network namespace of its own, reachable only through ports on the host's 127.0.0.1.

Some servers cannot be told to listen on loopback only: Milvus 2.3.5's gRPC servers listen on
``[::]:PORT`` whatever its config says. Run such a server here instead::

    python -m motionmatch.index.netns --forward FD:PORT [--forward FD:PORT ...] --pid-file F -- COMMAND ...

The launcher (this module, run as its own process):

1. receives listening sockets already bound to ``127.0.0.1`` in the host's namespace (``FD``, passed by
   the caller with ``pass_fds``). A socket keeps the namespace it was made in, so these stay on the host;
2. moves itself into a new user + network namespace (``unshare(CLONE_NEWUSER | CLONE_NEWNET)``, which
   needs no privilege where the kernel allows unprivileged user namespaces) and brings its loopback up.
   The namespace has no other interface, so whatever the server binds, no other host can reach it;
3. starts ``COMMAND`` there (it dies with the launcher: ``PR_SET_PDEATHSIG``) and writes its pid;
4. relays every connection accepted on a host socket ``FD`` to ``127.0.0.1:PORT`` inside the namespace;
5. passes SIGTERM / SIGINT on to the server and exits with its exit code.

:func:`isolation_error` says whether this machine allows it (None) or why not;
:func:`listening_sockets` reads what a process's namespace listens on (``/proc/PID/net/tcp*``).
"""
from __future__ import annotations

import argparse
import ctypes
import fcntl
import functools
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
RELAY_CHUNK = 1 << 16
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def enter_namespace() -> None:
    """Move this (single-threaded) process into a new user + network namespace with loopback up.

    OSError (with the kernel's reason) when the kernel refuses an unprivileged user namespace.
    """
    uid, gid = os.getuid(), os.getgid()
    if _libc().unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWUSER | CLONE_NEWNET) refused: {os.strerror(errno)}")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")  # the same ids inside: files keep their owner
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # `ip link set lo up`
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def launcher() -> list[str]:
    """The command that runs this module as a launcher: its file, not ``-m motionmatch.index.netns``.

    ``unshare(CLONE_NEWUSER)`` is refused in a process that has started threads, and importing the package
    (numpy, pandas: OpenBLAS starts its threads at import) would start them; this file imports only the standard
    library, so run by path it stays single-threaded until it has made its namespace."""
    return [sys.executable, str(Path(__file__).resolve())]


@functools.lru_cache(maxsize=1)
def isolation_error() -> str | None:
    """None when this machine lets a process make its own network namespace, else the reason (asked once)."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux only (this is {sys.platform})"
    probe = subprocess.run([*launcher(), "--probe"], capture_output=True, text=True, timeout=60)
    if probe.returncode == 0:
        return None
    return (probe.stderr.strip().splitlines() or ["the probe failed"])[-1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(RELAY_CHUNK):
            target.sendall(data)
    except OSError:
        pass
    try:
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _relay(client: socket.socket, port: int) -> None:
    try:
        inner = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:  # the server is not listening (yet): the client sees the connection close
        client.close()
        return
    inner.settimeout(None)
    for sock in (client, inner):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    upstream = threading.Thread(target=_pump, args=(client, inner), daemon=True)
    upstream.start()
    _pump(inner, client)
    upstream.join()
    client.close()
    inner.close()


def _serve(listener: socket.socket, port: int) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_relay, args=(client, port), daemon=True).start()


def listening_sockets(pid: int | str = "self") -> list[tuple[str, int]]:
    """(address, port) of every TCP socket listening in the network namespace of process ``pid``.

    Read from ``/proc/PID/net/tcp`` and ``tcp6``, which show that process's namespace (psutil reads the
    caller's). Empty when the process is gone.
    """
    found = set()
    for name, width in (("tcp", 4), ("tcp6", 16)):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            columns = line.split()
            if columns[3] != TCP_LISTEN:
                continue
            address, port = columns[1].split(":")
            raw = bytes.fromhex(address)  # 32-bit words in host byte order
            words = b"".join(struct.pack(">I", word) for word in struct.unpack(f"={width // 4}I", raw))
            found.add((str(ipaddress.ip_address(words)), int(port, 16)))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m motionmatch.index.netns", description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", action="store_true", help="only check that a namespace can be made")
    parser.add_argument("--forward", action="append", default=[], metavar="FD:PORT",
                        help="relay connections accepted on inherited listening socket FD to PORT inside")
    parser.add_argument("--pid-file", type=Path, help="where to write the server's pid")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        enter_namespace()
    except OSError as error:
        print(f"motionmatch.index.netns: cannot make a network namespace: {error}", file=sys.stderr)
        return 3
    if args.probe:
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the server's command after --")
    listeners = []
    for spec in args.forward:
        fd, port = (int(part) for part in spec.split(":"))
        listeners.append((socket.socket(fileno=fd), port))
    server = subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: PLW1509 - before any thread starts
    if args.pid_file:
        args.pid_file.write_text(str(server.pid))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: server.send_signal(number))
    for listener, port in listeners:
        threading.Thread(target=_serve, args=(listener, port), daemon=True).start()
    code = server.wait()
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
