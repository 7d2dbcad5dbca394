"""The tests' one TCP proxy: forwards to a real server (slapd, Samba AD); a test can take the
server away (:meth:`FaultProxy.stop`, :meth:`FaultProxy.start`) or, once armed, have the
proxy misbehave on the one request that matches.

Stopping the Samba DC and starting it again costs seconds; stopping the proxy is a server
going away as a client sees it (connections refused, open ones cut), and starting it again
listens on the same port.

What it can do to the matching request (:class:`Fault`):

* ``PASS``: forward it and its reply (use with ``after_forward`` to act in between);
* ``DROP_REPLY``: forward it, then swallow everything the server says on that connection;
* ``DELAY_REPLY``: forward it, and hold the reply ``delay_seconds`` before passing it on;
* ``HOLD_REPLY``: forward it, and hold the reply until :meth:`FaultProxy.release`;
* ``CUT_BEFORE``: close the connection instead of forwarding it: the server never sees it.

``after_forward`` runs once the request went through and before any of its reply passes
(to kill a database connection "right after the write"). The match is a predicate on the
bytes the client sent: :func:`ldap_request` reads plain LDAP; over TLS the test counts
requests with :func:`nth_request`. A fault fires once (or ``times``), then the proxy
forwards faithfully.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from enum import Enum

import pytest

#: LDAP protocolOp tags ([APPLICATION n], constructed).
MODIFY_REQUEST, EXTENDED_REQUEST = 0x66, 0x77
CHUNK = 65536


class Fault(Enum):
    PASS = "pass"
    DROP_REPLY = "drop-reply"
    DELAY_REPLY = "delay-reply"
    HOLD_REPLY = "hold-reply"
    CUT_BEFORE = "cut-before"


Matcher = Callable[[bytes], bool]


def ldap_request(*tags: int) -> Matcher:
    """Match plain-LDAP client data carrying a message whose protocolOp is one of ``tags``."""
    return lambda data: any(op in tags for op in _ldap_ops(data))


def nth_request(n: int) -> Matcher:
    """Match the ``n``-th chunk the client sends after arming (for TLS, where nothing is readable)."""
    seen = 0
    lock = threading.Lock()

    def match(data: bytes) -> bool:
        nonlocal seen
        with lock:
            seen += 1
            return seen == n

    return match


def _ldap_ops(data: bytes) -> list[int]:
    ops, at = [], 0
    while at + 2 < len(data) and data[at] == 0x30:
        length, body = _ber_length(data, at + 1)
        if body + 2 >= len(data) or data[body] != 0x02:  # messageID INTEGER
            break
        op_at = body + 2 + data[body + 1]
        if op_at < len(data):
            ops.append(data[op_at])
        at = body + length
    return ops


def _ber_length(data: bytes, at: int) -> tuple[int, int]:
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


class _Pair:
    """One client connection and its connection to the server."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.generation = 0  # which arming it was accepted under
        self.reply_gate = threading.Event()
        self.reply_gate.set()
        self.drop_replies = False

    def close(self) -> None:
        self.drop_replies = True
        self.reply_gate.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    """Listens on a free loopback port, the same one again after :meth:`stop` and :meth:`start`,
    and forwards to ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener: socket.socket | None = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._armed: tuple[Fault, Matcher, float, Callable[[], None] | None] | None = None
        self._times = 0
        self._generation = 0
        self._new_only = False
        self._released = threading.Event()
        self.fired = threading.Event()
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def url(self, scheme: str = "ldap") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def arm(
        self,
        fault: Fault,
        when: Matcher,
        *,
        delay_seconds: float = 0.0,
        after_forward: Callable[[], None] | None = None,
        times: int = 1,
        new_connections_only: bool = False,
    ) -> None:
        """Misbehave on the next ``times`` client data ``when`` matches.

        ``new_connections_only``: look only at connections opened after this call (a user's
        own bind, say), not at the shared ones already open.
        """
        with self._lock:
            self._generation += 1
            self._new_only = new_connections_only
            self.fired.clear()
            self._released.clear()
            self._armed = (fault, when, delay_seconds, after_forward)
            self._times = times

    def release(self) -> None:
        """Let a held reply through."""
        self._released.set()

    def stop(self) -> None:
        """The server goes away: refuse new connections and cut the open ones."""
        self._released.set()
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it
            with contextlib.suppress(OSError):
                listener.close()
        for pair in pairs:
            pair.close()

    def start(self) -> None:
        """The server is back: listen again on the same port."""
        with self._lock:
            if self._listener is not None:
                return
            self._listener = socket.create_server(self.address)  # SO_REUSEADDR: the port is free again
            threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    close = stop  # the fixtures' teardown: nothing left listening or connected

    # --- forwarding ---------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server)
            with self._lock:
                if self._listener is not listener:  # stopped while this one was connecting
                    pair.close()
                    return
                pair.generation = self._generation
                self._pairs.append(pair)
            threading.Thread(target=self._client_to_server, args=(pair,), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(pair,), daemon=True).start()

    def _take_fault(self, pair: _Pair, data: bytes) -> tuple[Fault, float, Callable[[], None] | None] | None:
        with self._lock:
            if self._armed is None or (self._new_only and pair.generation != self._generation):
                return None
            if not self._armed[1](data):
                return None
            fault, _, delay, after = self._armed
            self._times -= 1
            if self._times <= 0:
                self._armed = None
            return fault, delay, after

    def _client_to_server(self, pair: _Pair) -> None:
        try:
            while data := pair.client.recv(CHUNK):
                fault = self._take_fault(pair, data)
                if fault is None:
                    pair.server.sendall(data)
                    continue
                self._misbehave(pair, data, *fault)
        except OSError:
            pass
        finally:
            pair.close()

    def _misbehave(
        self, pair: _Pair, data: bytes, fault: Fault, delay: float, after: Callable[[], None] | None
    ) -> None:
        if fault is Fault.CUT_BEFORE:
            self.fired.set()
            pair.close()
            return
        pair.reply_gate.clear()  # before forwarding: not a byte of the reply slips through
        pair.server.sendall(data)
        if after is not None:
            after()
        self.fired.set()
        if fault is Fault.DROP_REPLY:
            pair.drop_replies = True
            pair.reply_gate.set()
        elif fault is Fault.DELAY_REPLY:
            threading.Timer(delay, pair.reply_gate.set).start()
        elif fault is Fault.HOLD_REPLY:
            threading.Thread(
                target=lambda: (self._released.wait(), pair.reply_gate.set()), daemon=True
            ).start()
        else:
            pair.reply_gate.set()

    def _server_to_client(self, pair: _Pair) -> None:
        try:
            while data := pair.server.recv(CHUNK):
                pair.reply_gate.wait()
                if not pair.drop_replies:
                    pair.client.sendall(data)
        except OSError:
            pass
        finally:
            if not pair.drop_replies:
                pair.close()


@contextlib.contextmanager
def fault_proxy(target: tuple[str, int]) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def slapd_proxy(slapd: object) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's slapd."""
    host, port = str(slapd.url).rsplit("//", 1)[1].rsplit(":", 1)  # type: ignore[attr-defined]
    with fault_proxy((host, int(port))) as proxy:
        yield proxy


@pytest.fixture
def samba_proxy(samba_ad: object) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's Samba AD DC (LDAPS: the proxy sees only sizes)."""
    with fault_proxy((samba_ad.address, 636)) as proxy:  # type: ignore[attr-defined]
        yield proxy
