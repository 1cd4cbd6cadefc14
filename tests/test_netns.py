"""motionmatch.index.netns: a server in its own network namespace, reachable only through the host's 127.0.0.1.

A real launcher process, a real server (Python's http.server, which binds every interface like Milvus
2.3.5 does), real sockets. Skipped where the kernel refuses unprivileged user namespaces.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from conftest import connects, external_addresses

from motionmatch.index import netns
from motionmatch.index.netns import isolation_error, listening_sockets

REFUSED = isolation_error()
pytestmark = pytest.mark.skipif(REFUSED is not None, reason=f"no network namespace here: {REFUSED}")


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@pytest.fixture()
def namespaced_http(tmp_path):
    """(launcher, server pid, host port) for `python -m http.server --bind ::` run in a namespace."""
    listener = _listener()
    port, pid_file = listener.getsockname()[1], tmp_path / "server.pid"
    (tmp_path / "index.html").write_text("inside the namespace")
    launcher = subprocess.Popen([*netns.launcher(), f"--forward={listener.fileno()}:{port}",
                                 f"--pid-file={pid_file}", "--", sys.executable, "-m", "http.server", "--bind", "::",
                                 str(port)], cwd=tmp_path, pass_fds=[listener.fileno()],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    listener.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (pid_file.exists() and pid_file.read_text()
                                               and listening_sockets(int(pid_file.read_text()))):
        time.sleep(0.1)
    server_pid = int(pid_file.read_text())
    yield launcher, server_pid, port
    launcher.kill()
    launcher.wait(10)


def test_served_through_loopback_only(namespaced_http):
    launcher, server_pid, port = namespaced_http
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as response:
        assert response.read() == b"inside the namespace"
    assert listening_sockets(server_pid) == [("::", port)]  # the server's view: every interface of its namespace
    host = {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in (launcher.pid, server_pid)}
    assert host == {("127.0.0.1", port)}
    outside = external_addresses()
    assert outside and not [a for a in outside if connects(a, port)]


def test_sigterm_reaches_the_server_and_its_exit_code_comes_back(namespaced_http):
    launcher, server_pid, _ = namespaced_http
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(10) == 128 + signal.SIGTERM  # http.server dies of SIGTERM: reported as a shell would
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE


def test_sigkilled_launcher_takes_its_server_down(namespaced_http):
    launcher, server_pid, port = namespaced_http
    launcher.kill()
    launcher.wait(10)
    psutil.Process(server_pid).wait(timeout=10)  # PR_SET_PDEATHSIG: no server left behind, unreachable
    assert not connects("127.0.0.1", port)


def test_listening_sockets_agrees_with_psutil_in_our_own_namespace():
    v4, v6 = _listener(), socket.socket(socket.AF_INET6)
    v6.bind(("::", 0))
    v6.listen()
    with v4, v6:
        for _ in range(10):  # other processes open and close ports between the two reads: retry until they agree
            expected = sorted({(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp")
                               if c.status == psutil.CONN_LISTEN})
            if (found := listening_sockets()) == expected:
                break
            time.sleep(0.2)
        assert found == expected
        assert ("127.0.0.1", v4.getsockname()[1]) in found and ("::", v6.getsockname()[1]) in found


def test_a_launcher_without_a_command_says_so():
    result = subprocess.run([*netns.launcher(), "--"], capture_output=True, text=True)
    assert result.returncode == 2 and "give the server's command after --" in result.stderr
