"""argon2 memory: checks in turn on four threads keep one block, not one per thread.

Each check needs m=19 MiB. These run in a fresh interpreter so that the peak resident
size (VmHWM) and the pool's counters are this workload's alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

BLOCK_MIB = 19  # m=19456 KiB, the default

#: Sixteen verifies, one at a time, taking turns across four live threads (as gunicorn's
#: four threads per worker do under sequential resets).
IN_TURN = textwrap.dedent(
    """
    import json, threading

    from selfservice.security.answers import AnswerHasher

    def peak_mib():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024

    hasher = AnswerHasher()  # the default parameters: m=19 MiB, t=2, p=1
    before = peak_mib()
    stored = hasher.hash("fluffy")
    turn = threading.Condition()
    state = {"next": 0, "results": []}

    def check(index):
        for round_ in range(4):
            with turn:
                turn.wait_for(lambda: state["next"] == round_ * 4 + index)
            state["results"].append(hasher.verify(stored, "fluffy"))
            with turn:
                state["next"] += 1
                turn.notify_all()

    threads = [threading.Thread(target=check, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = {"growth_mib": peak_mib() - before, "results": state["results"]}
    try:
        from selfservice.argon2_pool import process_pool
    except ImportError:
        pass
    else:
        report["blocks"] = process_pool().blocks_mapped
    print(json.dumps(report))
    """
)


def run_isolated(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_checks_taking_turns_on_four_threads_keep_one_argon2_block() -> None:
    report = run_isolated(IN_TURN)
    assert report["results"] == [True] * 16
    # One block for the hash and every verify after it; glibc kept one per thread (about 4).
    assert report["growth_mib"] < 2 * BLOCK_MIB, report
    assert report.get("blocks") == 1, report


#: The parent makes its pool, then forks (as gunicorn's master forks workers); parent and
#: child verify at the same time.
AFTER_FORK = textwrap.dedent(
    """
    import json, os

    from selfservice.argon2_pool import process_pool
    from selfservice.security.answers import AnswerHasher

    hasher = AnswerHasher()
    stored = hasher.hash("fluffy")
    parent_pool = process_pool()
    reader, writer = os.pipe()
    child = os.fork()
    results = [hasher.verify(stored, "fluffy") and not hasher.verify(stored, "fluffy2") for _ in range(10)]
    if child == 0:
        report = {"results": results, "own_pool": process_pool() is not parent_pool,
                  "blocks": process_pool().blocks_mapped}
        os.write(writer, json.dumps(report).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        child_report = json.loads(pipe.read())
    os.waitpid(child, 0)
    parent_blocks = process_pool().blocks_mapped
    print(json.dumps({"parent": results, "parent_blocks": parent_blocks, "child": child_report}))
    """
)


def test_a_forked_child_checks_with_its_own_blocks() -> None:
    report = run_isolated(AFTER_FORK)
    assert report["parent"] == [True] * 10
    assert report["parent_blocks"] == 1
    assert report["child"] == {"results": [True] * 10, "own_pool": True, "blocks": 1}
