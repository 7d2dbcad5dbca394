"""A web worker keeps one argon2 block, not one per thread (issue 17, P5; selfservice/memory.py).

Each case runs in a fresh interpreter: an arena, once made, stays for the process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BLOCK_MIB = 19  # the default argon2 m (19 MiB), never lowered here

#: Four threads that live on (a gunicorn worker's) check an answer one after another.
CHECKS_IN_TURN = """
import json, sys, threading

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "wsgi":
    import selfservice.wsgi  # noqa: F401  (what gunicorn imports)
from argon2 import PasswordHasher  # the portal's parameters (security/answers.py), not the portal
hasher = PasswordHasher(memory_cost=19 * 1024, time_cost=2, parallelism=1)
stored = hasher.hash("fluffy")
hasher.verify(stored, "fluffy")
before = peak()
turns = [threading.Event() for _ in range(4)]
done = [threading.Event() for _ in range(4)]
finish = threading.Event()

def worker(index):
    turns[index].wait()
    hasher.verify(stored, "fluffy")
    done[index].set()
    finish.wait()  # alive, as a worker's threads are, while the others take their turn

threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for thread in threads:
    thread.start()
for turn, finished in zip(turns, done):
    turn.set()
    finished.wait()
grown = peak() - before
finish.set()
print(json.dumps(grown))
"""


def growth(how: str, tmp_path: Path) -> float:
    env = {
        "SELFSERVICE_SECRET_KEY": "k" * 40,
        "SELFSERVICE_BASE_URL": "https://password.school.test",
        "SELFSERVICE_INSTANCE_PATH": str(tmp_path),
        "SELFSERVICE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHECKS_IN_TURN, how],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
        check=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_worker_whose_threads_take_turns_at_argon2_keeps_one_block(tmp_path: Path) -> None:
    assert growth("wsgi", tmp_path) < BLOCK_MIB


def test_without_it_each_thread_keeps_its_own_block(tmp_path: Path) -> None:
    """The case the worker's setting exists for: what the test above would see without it."""
    assert growth("plain", tmp_path) > 2 * BLOCK_MIB
