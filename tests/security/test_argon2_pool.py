"""The pooled argon2 hasher: the same hashes, answers and errors as argon2-cffi's PasswordHasher."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import hash_secret

from selfservice.argon2_pool import Argon2Hasher, BlockPool, memory_bytes, process_pool
from selfservice.directory.builtin import password_hasher

FAST = {"time_cost": 1, "memory_cost": 256, "parallelism": 1}


@pytest.fixture
def pooled() -> Argon2Hasher:
    return Argon2Hasher(**FAST)


@pytest.fixture
def reference() -> PasswordHasher:
    return PasswordHasher(**FAST, type=Type.ID)


def outcome(check: object, *args: object) -> object:
    """What a call returns, or the class of what it raises."""
    try:
        return check(*args)  # type: ignore[operator]
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return type(error)


def test_a_hash_is_the_one_argon2_cffi_makes_from_the_same_salt(
    pooled: Argon2Hasher, reference: PasswordHasher
) -> None:
    salt = b"sixteen byte slt"
    assert pooled.hash("pässword", salt=salt) == reference.hash("pässword", salt=salt)


def test_the_default_hash_is_argon2id_19mib_t2_p1_with_a_random_salt() -> None:
    hasher = Argon2Hasher()
    first, second = hasher.hash("secret"), hasher.hash("secret")
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second
    assert PasswordHasher().verify(first, "secret") is True


def test_hashes_made_here_verify_with_argon2_cffi_and_the_other_way(
    pooled: Argon2Hasher, reference: PasswordHasher
) -> None:
    assert reference.verify(pooled.hash("correct horse"), "correct horse") is True
    assert pooled.verify(reference.hash("correct horse"), "correct horse") is True
    assert pooled.verify(reference.hash(b"bytes too"), b"bytes too") is True


def test_a_wrong_secret_is_a_mismatch(pooled: Argon2Hasher, reference: PasswordHasher) -> None:
    for stored in (pooled.hash("right"), reference.hash("right")):
        with pytest.raises(VerifyMismatchError):
            pooled.verify(stored, "wrong")
        with pytest.raises(VerifyMismatchError):
            pooled.verify(stored, "")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a hash",
        "$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWX",
        "$argon2id",
        "$argon2id$v=19$m=256,t=1,p=1$",
        "$argon2id$v=19$m=abc,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=0256,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # a leading zero
        "$argon2id$v=19$m=256,t=1,p=1$c29tZQ$aGFzaGhhc2hoYXNoaGFzaA",  # salt too short
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHRzYWx0$aGE",  # hash too short
        "$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=256,t=1,p=0$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=7,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # under 8 KiB a lane
        "$argon2id$v=19$m=4294967296,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaB",  # stray low bits
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA=",  # padding
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA$",
        "$argon2i$v=19$m=256,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # right shape, wrong hash
        "$argon2id$v=19$m=256,t=1,p=1$ßalt$hash",
        # a corrupt row: a number longer than int() reads
        "$argon2id$v=19$m=" + "9" * 5000 + ",t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_a_garbage_hash_raises_what_argon2_cffi_raises(
    pooled: Argon2Hasher, reference: PasswordHasher, garbage: str
) -> None:
    expected = outcome(reference.verify, garbage, "secret")
    assert expected in {InvalidHashError, VerificationError, VerifyMismatchError, UnicodeEncodeError}
    assert outcome(pooled.verify, garbage, "secret") is expected
    assert outcome(pooled.check_needs_rehash, garbage) == outcome(reference.check_needs_rehash, garbage)


def test_a_hash_cut_at_a_nul_verifies_as_argon2_cffi_reads_it(
    pooled: Argon2Hasher, reference: PasswordHasher
) -> None:
    stored = reference.hash("secret") + "\x00anything"
    assert outcome(pooled.verify, stored, "secret") == outcome(reference.verify, stored, "secret")


@pytest.mark.parametrize(
    ("time_cost", "memory_cost", "parallelism", "kind"),
    [
        (1, 1032, 1, Type.ID),  # sizes no hasher in the test process keeps
        (3, 64, 2, Type.ID),
        (1, 8, 1, Type.ID),
        (2, 512, 4, Type.I),
        (1, 128, 1, Type.D),
    ],
)
def test_a_hash_with_other_parameters_verifies_in_a_fitting_block(
    pooled: Argon2Hasher, time_cost: int, memory_cost: int, parallelism: int, kind: Type
) -> None:
    stored = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=kind
    ).hash("secret")
    temporary = process_pool().temporary_mapped
    assert pooled.verify(stored, "secret") is True
    with pytest.raises(VerifyMismatchError):
        pooled.verify(stored, "Secret")
    assert pooled.check_needs_rehash(stored) is True
    assert process_pool().temporary_mapped == temporary + 2  # mapped for each call, then unmapped
    assert not process_pool().outstanding()


def test_an_argon2_1_0_hash_verifies_with_or_without_its_version(pooled: Argon2Hasher) -> None:
    stored = hash_secret(b"secret", b"somesaltsalt", 1, 256, 1, 32, Type.ID, version=0x10).decode()
    assert "$v=16$" in stored
    assert pooled.verify(stored, "secret") is True
    assert pooled.verify(stored.replace("$v=16", ""), "secret") is True  # no version means 1.0


def test_needs_rehash_follows_argon2_cffi(pooled: Argon2Hasher, reference: PasswordHasher) -> None:
    assert pooled.check_needs_rehash(reference.hash("x")) is False
    assert (
        pooled.check_needs_rehash(PasswordHasher(time_cost=2, memory_cost=256, parallelism=1).hash("x"))
        is True
    )
    assert pooled.check_needs_rehash(pooled.hash("x").encode()) is False


def test_threads_verifying_at_once_get_right_answers_and_at_most_the_bound_of_blocks() -> None:
    odd_size = {"time_cost": 1, "memory_cost": 328, "parallelism": 1}  # a size no other test uses
    hasher = Argon2Hasher(**odd_size, max_blocks=2)
    stored = {word: PasswordHasher(**odd_size).hash(word) for word in "abcdef"}
    pool = process_pool()
    pool.most_out = 0
    mapped, temporary = pool.blocks_mapped, pool.temporary_mapped
    start = threading.Barrier(len(stored))
    results: dict[str, list[bool]] = {}

    def check(word: str) -> None:
        start.wait()
        outcomes = []
        for _ in range(10):
            outcomes.append(hasher.verify(stored[word], word))
            outcomes.append(outcome(hasher.verify, stored[word], word + "!") is VerifyMismatchError)
        results[word] = outcomes

    threads = [threading.Thread(target=check, args=(word,)) for word in stored]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {word: [True] * 20 for word in stored}
    assert pool.blocks_mapped - mapped <= 2
    assert pool.temporary_mapped == temporary  # the others waited for a block
    assert pool.most_out <= 2
    assert not pool.outstanding()


def test_a_block_never_given_back_makes_a_call_map_its_own_not_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = BlockPool()
    pool.keep(8192, 1)
    monkeypatch.setattr(BlockPool, "WAIT_SECONDS", 0.01)
    first = pool.take(8192)
    second = pool.take(8192)
    assert first != second
    assert (pool.blocks_mapped, pool.temporary_mapped) == (1, 1)
    pool.give_back(second)
    pool.give_back(first)
    assert pool.take(8192) == first  # the kept block, reused


def test_the_builtin_directory_hashes_with_the_pool() -> None:
    hasher = password_hasher({"ARGON2_MEMORY_KIB": 256, "ARGON2_TIME_COST": 1, "ARGON2_PARALLELISM": 1})
    assert isinstance(hasher, Argon2Hasher)
    assert PasswordHasher(**FAST).verify(hasher.hash("pw"), "pw") is True


def test_memory_bytes_is_what_argon2_asks_for() -> None:
    assert memory_bytes(19456, 1) == 19456 * 1024
    assert memory_bytes(1, 1) == 8 * 1024  # at least 8 blocks a lane
    assert memory_bytes(1030, 4) == 1024 * 1024  # whole segments of 4 lanes


def test_a_block_given_back_reaches_the_waiter_of_its_size_when_another_size_waits_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(BlockPool, "WAIT_SECONDS", 60.0)
    pool = BlockPool()
    small, large = 8192, 16384
    pool.keep(small, 1)
    pool.keep(large, 1)
    taken = {size: pool.take(size) for size in (small, large)}
    got: dict[int, int] = {}

    def wait_for(size: int) -> None:
        got[size] = pool.take(size)

    waiters = {}
    for size in (large, small):  # the other size waits first, so a single wake-up goes to it
        waiters[size] = threading.Thread(target=wait_for, args=(size,), daemon=True)
        waiters[size].start()
        while pool.waiting < len(waiters):
            threading.Event().wait(0.001)
    pool.give_back(taken[small])
    waiters[small].join(timeout=20)  # a lost wake-up would leave it asleep for the whole minute
    assert got.get(small) == taken[small]
    pool.give_back(taken[large])
    waiters[large].join(timeout=20)
    assert got.get(large) == taken[large]


def test_an_exception_raised_while_argon2_waits_for_memory_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A signal handler may raise while a check waits for a block (inside argon2's allocate
    # callback): the caller must see it, not a failed check, which would read as a wrong answer.
    hasher = Argon2Hasher(**FAST)
    stored = hasher.hash("right")

    def interrupted(_pool: BlockPool, _size: int) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(BlockPool, "take", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hasher.verify(stored, "right")
    monkeypatch.undo()
    assert hasher.verify(stored, "right") is True
    assert not process_pool().outstanding()
