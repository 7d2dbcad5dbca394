"""argon2id hashing whose memory comes from a per-process pool of reusable blocks.

argon2-cffi's ``PasswordHasher`` lets the C library malloc its m=19 MiB block on every
call. glibc then keeps a freed block per malloc arena, and each gunicorn thread gets an
arena of its own, so a worker kept up to one block per thread after resets; returning
blocks to the system instead costs about 4.5 ms of page faults per check. Here argon2's
``allocate_cbk``/``free_cbk`` hand out blocks of anonymous memory kept by the process and
reused last-in first-out, so checks one after another on any thread touch one block, and
at most ``ARGON2_MAX_CONCURRENT`` blocks exist (a call waits for one beyond that). A block
of another size (a stored hash with other parameters) is mapped for the call and unmapped
after.

``Argon2Hasher`` is a drop-in for the ``PasswordHasher`` the portal used: the same hash
strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``), the same exceptions
(``InvalidHashError``, ``VerifyMismatchError``, ``VerificationError``, ``HashingError``)
for the same inputs, and ``check_needs_rehash`` by argon2-cffi's own rule. argon2 wipes
each block before it hands it back, as it does before ``free``.
"""

from __future__ import annotations

import base64
import hmac
import mmap
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from argon2 import Parameters, Type, extract_parameters
from argon2.exceptions import HashingError, InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION, core, error_to_str, ffi, lib

SALT_BYTES = 16  # argon2-cffi's default
HASH_BYTES = 32
_BLOCK_BYTES = 1024  # one argon2 memory block (m counts these, in KiB)

#: The hash's type, read from its first nine characters as argon2-cffi reads it.
_HEADER_TO_TYPE = {b"$argon2i$": Type.I, b"$argon2d$": Type.D, b"$argon2id": Type.ID}
_TYPE_NAMES = {Type.I: "argon2i", Type.D: "argon2d", Type.ID: "argon2id"}

#: What the C library's ``decode_string`` accepts: decimals without leading zeros, a
#: version that may be left out (then 0x10), unpadded standard base64 for the salt and the
#: hash, nothing after.
_DECIMAL = "(?:0|[1-9][0-9]{0,9})"  # more digits than 2**32 has cannot decode (nor reach int())
_ENCODED = re.compile(
    rf"\$(?P<type>argon2id|argon2i|argon2d)(?:\$v=(?P<v>{_DECIMAL}))?"
    rf"\$m=(?P<m>{_DECIMAL}),t=(?P<t>{_DECIMAL}),p=(?P<p>{_DECIMAL})"
    r"\$(?P<salt>[A-Za-z0-9+/]*)\$(?P<hash>[A-Za-z0-9+/]*)".encode()
)
_UINT32_MAX = 0xFFFFFFFF


def memory_bytes(memory_cost: int, parallelism: int) -> int:
    """The bytes argon2 asks for: ``m`` KiB rounded down to whole segments (at least 8 per lane)."""
    lanes = max(parallelism, 1)
    quarter_lanes = lib.ARGON2_SYNC_POINTS * lanes
    blocks = max(memory_cost, 2 * quarter_lanes)
    return (blocks // quarter_lanes) * quarter_lanes * _BLOCK_BYTES


class _Block:
    """One anonymous private mapping (never shared with a forked child) and its address."""

    __slots__ = ("address", "kept", "mapping", "pointer", "size")

    def __init__(self, size: int, *, kept: bool) -> None:
        self.size = size
        self.kept = kept
        self.mapping = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.pointer = ffi.from_buffer("uint8_t[]", self.mapping)
        self.address = int(ffi.cast("uintptr_t", self.pointer))

    def unmap(self) -> None:
        self.pointer = None  # the buffer export first, or close() refuses
        self.mapping.close()


class BlockPool:
    """The argon2 blocks of one process: kept sizes reused last-in first-out, others temporary.

    A kept size is also a bound: when all its blocks are out, the next call waits for one
    (a check takes tens of milliseconds) rather than map more, so at most that many are
    live at once whoever calls (answer checks through the work gate, password hashes and
    sign-ins outside it). Should a wait pass ``WAIT_SECONDS`` (a block never given back),
    the call gets a temporary block instead of hanging.

    ``blocks_mapped`` counts kept blocks ever mapped, ``temporary_mapped`` the others,
    ``most_out`` the most blocks handed out at once; tests and benchmarks read them.
    """

    WAIT_SECONDS = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._keep: dict[int, int] = {}  # size -> how many blocks of it to keep
        self._kept: dict[int, int] = {}  # size -> how many of it are mapped (free or out)
        self._free: dict[int, list[_Block]] = {}
        self._out: dict[int, _Block] = {}  # address -> block handed to argon2
        self.blocks_mapped = 0
        self.temporary_mapped = 0
        self.most_out = 0
        self.waiting = 0

    def keep(self, size: int, count: int) -> None:
        """Keep up to ``count`` blocks of ``size`` bytes once used (the largest count asked wins)."""
        with self._lock:
            self._keep[size] = max(self._keep.get(size, 0), count)

    def take(self, size: int) -> int:
        """The address of a block of ``size`` bytes, for argon2 alone until :meth:`give_back`."""
        with self._lock:
            block = self._kept_block(size)
            if block is None:
                block = _Block(size, kept=False)  # a failed mmap raises before anything is counted
                self.temporary_mapped += 1
            self._out[block.address] = block
            self.most_out = max(self.most_out, len(self._out))
            return block.address

    def _kept_block(self, size: int) -> _Block | None:
        """A free kept block, a new one while under the bound, or one given back within the wait."""
        deadline = time.monotonic() + self.WAIT_SECONDS
        while True:
            free = self._free.get(size)
            if free:
                return free.pop()
            mapped, bound = self._kept.get(size, 0), self._keep.get(size, 0)
            if mapped < bound:
                block = _Block(size, kept=True)
                self._kept[size] = mapped + 1
                self.blocks_mapped += 1
                return block
            left = deadline - time.monotonic()
            if bound == 0 or left <= 0:
                return None
            self.waiting += 1
            try:
                self._returned.wait(left)
            finally:
                self.waiting -= 1

    def give_back(self, address: int) -> None:
        with self._lock:
            block = self._out.pop(address, None)
            if block is None:
                return
            if block.kept:
                self._free.setdefault(block.size, []).append(block)
                self._returned.notify_all()  # one condition for every size: wake them all
                return
        block.unmap()

    def outstanding(self) -> set[int]:
        with self._lock:
            return set(self._out)


_pools: dict[int, BlockPool] = {}


def process_pool() -> BlockPool:
    """This process's pool, made on first use: a forked child never uses its parent's.

    No lock here (dict operations are atomic under the GIL): a lock held by another thread
    at fork time would stay held in the child.
    """
    pid = os.getpid()
    pool = _pools.get(pid)
    if pool is None:
        # The parent's pool goes, and its blocks (private copies) are unmapped with it.
        for other in list(_pools):  # a snapshot: another thread may be here too
            if other != pid:
                _pools.pop(other, None)
        pool = _pools.setdefault(pid, BlockPool())
    return pool


#: The blocks argon2 holds in this thread's current call (argon2 allocates and frees in
#: the calling thread, also with p > 1): what an error path left is given back after it.
_held = threading.local()


@ffi.callback("int(uint8_t **, size_t)")
def _allocate(memory: Any, size: int) -> int:
    memory[0] = ffi.NULL  # argon2 reads NULL as ARGON2_MEMORY_ALLOCATION_ERROR
    try:
        address = process_pool().take(size)
    except (OSError, MemoryError, ValueError, OverflowError):
        return -1
    except BaseException as error:  # noqa: BLE001 - a signal's exception: raised again after argon2
        _held.raised = error  # cffi would print it and answer 0 (so a failed check)
        return -1
    _held.addresses.append(address)
    memory[0] = ffi.cast("uint8_t *", address)
    return 0


@ffi.callback("void(uint8_t *, size_t)")
def _free(memory: Any, _size: int) -> None:
    address = int(ffi.cast("uintptr_t", memory))
    process_pool().give_back(address)
    held = getattr(_held, "addresses", [])
    if address in held:
        held.remove(address)


@dataclass(frozen=True)
class _Decoded:
    type: Type
    version: int
    memory_cost: int
    time_cost: int
    parallelism: int
    salt: bytes
    digest: bytes


class Argon2Hasher:
    """argon2 hash, verify and needs-rehash with pooled memory; argon2id for new hashes."""

    def __init__(
        self,
        time_cost: int = 2,
        memory_cost: int = 19456,
        parallelism: int = 1,
        *,
        max_blocks: int = 2,
        hash_len: int = HASH_BYTES,
        salt_len: int = SALT_BYTES,
    ) -> None:
        """argon2's parameters (memory in KiB); ``max_blocks`` of their size are kept per process."""
        self._parameters = Parameters(
            type=Type.ID,
            version=ARGON2_VERSION,
            salt_len=salt_len,
            hash_len=hash_len,
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
        )
        self._block_size = memory_bytes(memory_cost, parallelism)
        self._max_blocks = max_blocks

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        """The encoded hash of ``password``, with a random salt; HashingError on failure."""
        params = self._parameters
        decoded = _Decoded(
            type=params.type,
            version=params.version,
            memory_cost=params.memory_cost,
            time_cost=params.time_cost,
            parallelism=params.parallelism,
            salt=salt or os.urandom(params.salt_len),
            digest=b"",
        )
        code, digest = self._compute(decoded, _as_bytes(password, "utf-8"), params.hash_len)
        if code != lib.ARGON2_OK:
            raise HashingError(error_to_str(code))
        return _encode(decoded, digest)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        """True, or VerifyMismatchError / VerificationError / InvalidHashError as argon2-cffi raises."""
        encoded = _as_bytes(hash, "ascii")
        hash_type = _HEADER_TO_TYPE.get(encoded[:9])
        if hash_type is None:
            raise InvalidHashError
        secret = _as_bytes(password, "utf-8")
        decoded = _decode(encoded.split(b"\0", 1)[0], hash_type)  # C reads up to the first NUL
        if decoded is None:
            raise VerificationError(error_to_str(lib.ARGON2_DECODING_FAIL))
        code, digest = self._compute(decoded, secret, len(decoded.digest))
        if code != lib.ARGON2_OK:
            raise VerificationError(error_to_str(code))
        if not hmac.compare_digest(digest, decoded.digest):
            raise VerifyMismatchError(error_to_str(lib.ARGON2_VERIFY_MISMATCH))
        return True

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        """True when ``hash`` was made with other parameters (argon2-cffi's own comparison)."""
        if isinstance(hash, bytes):
            hash = hash.decode("ascii")
        return self._parameters != extract_parameters(hash)

    def _compute(self, decoded: _Decoded, secret: bytes, digest_len: int) -> tuple[int, bytes]:
        """argon2_ctx with pooled memory: (error code, raw digest)."""
        pool = process_pool()
        pool.keep(self._block_size, self._max_blocks)
        out = ffi.new("uint8_t[]", digest_len)
        pwd = ffi.new("uint8_t[]", secret)
        salt = ffi.new("uint8_t[]", decoded.salt)
        context = ffi.new(
            "argon2_context *",
            {
                "out": out,
                "outlen": digest_len,
                "pwd": pwd,
                "pwdlen": len(secret),
                "salt": salt,
                "saltlen": len(decoded.salt),
                "secret": ffi.NULL,
                "secretlen": 0,
                "ad": ffi.NULL,
                "adlen": 0,
                "t_cost": decoded.time_cost,
                "m_cost": decoded.memory_cost,
                "lanes": decoded.parallelism,
                "threads": decoded.parallelism,
                "version": decoded.version,
                "allocate_cbk": _allocate,
                "free_cbk": _free,
                "flags": lib.ARGON2_DEFAULT_FLAGS,
            },
        )
        _held.addresses, _held.raised = [], None
        try:
            code = core(context, decoded.type.value)
        finally:
            for address in _held.addresses:  # only when argon2 failed after allocating
                pool.give_back(address)
            _held.addresses, raised, _held.raised = [], _held.raised, None
        if raised is not None:
            raise raised
        return code, bytes(ffi.buffer(out, digest_len))


def _as_bytes(value: str | bytes, encoding: str) -> bytes:
    return value if isinstance(value, bytes) else value.encode(encoding)


def _decode(encoded: bytes, hash_type: Type) -> _Decoded | None:
    """The C library's ``decode_string``: None where it fails (argon2_ctx checks the values)."""
    match = _ENCODED.fullmatch(encoded)
    if match is None or match["type"].decode() != _TYPE_NAMES[hash_type]:
        return None
    numbers = [int(match[name]) for name in ("m", "t", "p")]
    version = int(match["v"]) if match["v"] is not None else lib.ARGON2_VERSION_10
    salt, digest = _unbase64(match["salt"]), _unbase64(match["hash"])
    if salt is None or digest is None or max(*numbers, version) > _UINT32_MAX:
        return None
    memory_cost, time_cost, parallelism = numbers
    return _Decoded(hash_type, version, memory_cost, time_cost, parallelism, salt, digest)


def _unbase64(text: bytes) -> bytes | None:
    """Unpadded standard base64 as argon2 reads it: no 1-mod-4 length, no stray low bits."""
    if len(text) % 4 == 1:
        return None
    raw = base64.b64decode(text + b"=" * (-len(text) % 4))
    return raw if _base64(raw) == text.decode() else None


def _base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _encode(decoded: _Decoded, digest: bytes) -> str:
    """The C library's ``encode_string``."""
    return (
        f"${_TYPE_NAMES[decoded.type]}$v={decoded.version}"
        f"$m={decoded.memory_cost},t={decoded.time_cost},p={decoded.parallelism}"
        f"${_base64(decoded.salt)}${_base64(digest)}"
    )
