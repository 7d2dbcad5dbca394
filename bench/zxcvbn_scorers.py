"""The password strength scorers side by side: zxcvbn (pure Python) and zxcvbn-rs-py (issue 17).

    .venv/bin/python bench/zxcvbn_scorers.py --old-python /tmp/zxcvbn-py/bin/python --rounds 5

The portal scores with zxcvbn-rs-py (the Rust port). The pure-Python ``zxcvbn`` package it
replaced is no longer installed with the portal: to compare, give --old-python an
interpreter that has it, e.g. a scratch virtual environment::

    python3 -m venv /tmp/zxcvbn-py && /tmp/zxcvbn-py/bin/pip install zxcvbn==4.5.0

Each scorer runs in fresh child processes (stdlib and the scorer only), alternately, round
by round, on the same ~200 varied passwords (common, decorated, l33t, keyboard walks,
dates, names with digits, some with the account's names as user inputs, repeats,
passphrases, random), each cut to the portal's 100 characters. Prints:

- CPU per scoring (process time over every password, --repeat times; median of rounds);
- CPU per scoring of passwords like the one bench/common.reset sets, and of
  100-character worst cases (digits, l33t symbols, repeats);
- what importing the scorer and its first scoring add to a process's peak RSS (VmHWM);
- how many scores differ and in which direction, the passwords whose verdict flips at
  PASSWORD_MIN_SCORE (3 by default, --min-score), each with both scores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MAX_CHARS = 100  # selfservice.security.passwords.ZXCVBN_MAX_CHARS
ACCOUNT = ["jsmith", "jordan", "smith"]  # login and name parts, as check_password passes them
OKAFOR = ["aokafor", "okafor"]

COMMON = (
    "password 123456 qwerty letmein iloveyou dragon monkey football baseball welcome admin abc123 "
    "trustno1 sunshine princess shadow master superman michael jennifer hunter2 starwars whatever "
    "freedom batman charlie 12345678 1qaz2wsx zaq12wsx passw0rd"
)
DECORATED = (
    "Password1 Password123! Welcome1! Summer2024!! Winter2025 Football!!2024 Iloveyou2 Qwerty123! "
    "Letmein!1 Monkey2023 Dragon#1 Baseball99 Princess2010 Sunshine!! Admin@123 Changeme1! "
    "Spring2026! Fall2025$ Autumn2024 P@ssw0rd"
)
LEET = (
    "p@ssw0rd P4ssw0rd! l3tm31n tr0ub4dor&3 Tr0ub4dor&3 s3cur1ty h4ck3r m0nk3y! dr4g0n12 $unsh1ne "
    "5up3rm4n b4s3b4ll f00tb4ll 1l0v3y0u pr1nc3ss w3lc0m3! ch4ng3m3 qw3rty! c0mput3r 3l3ph4nt"
)
KEYBOARD = (
    "qwertyuiop asdfghjkl zxcvbnm 1qaz2wsx3edc qazwsxedc !QAZ2wsx poiuytrewq 1q2w3e4r5t "
    "zaq1xsw2cde3 qwerasdfzxcv asdf;lkj 147258369 741852963 159753 qwertz123 azerty123 1234qwer "
    "mnbvcxz !@#$%^&* qwe123asd"
)
DATES = (
    "01011990 12/25/1985 1987-06-14 19700101 06141987 2024-01-01 31121999 July4th1976 25.12.2000 "
    "11/09/2001 020304 1990 19841984 2k24summer March151990 04/15/2012! 1999-12-31! 01-02-2003 "
    "Dec2020! 20061995"
)
NAMES = (
    "jordan23 michael1985 jessica2010! Ashley1234 Okafor1987 Smith2024! DavidSmith1 maria1990 "
    "Jose2005! Nguyen1999 Carlos#12 emily2012 Jacob123! Tyler2008 Brianna07 Kaylee2011! "
    "Daniel!1999 Sarah.Jones1 JohnDoe2020 Maya2015 Aaliyah2009 Jamal!2001 Sofia2016 Liam2013! "
    "Noah2012"
)
WITH_INPUTS = [
    ("Okafor1987", OKAFOR),
    ("aokafor2024!", OKAFOR),
    ("Okafor!Ada1987", OKAFOR),
    ("JordanSmith!", ACCOUNT),
    ("jsmith2025", ACCOUNT),
    ("Smith2024!", ACCOUNT),
    ("htimsj123", ACCOUNT),
    ("jordan#smith#1", ACCOUNT),
    ("J0rd4nSm1th", ACCOUNT),
    ("smithjordan99", ACCOUNT),
]
PASSPHRASES = [
    "correct horse battery staple",
    "violet canoe drifts past seven lanterns",
    "ilovemydog",
    "my dog is cute",
    "thequickbrownfox",
    "Mary had a little lamb",
    "to be or not to be",
    "letmeinplease",
    "the cat sat on the mat",
    "purple monkey dishwasher",
    "I love New York",
    "blue sky green grass",
    "happy birthday to you",
    "onetwothreefour",
    "iloveyoumorethanyouknow",
    "go tigers go",
    "springfield elementary",
    "pizza is my favorite food",
    "winter is coming",
    "may the force be with you",
    "orange tractor sleeps quietly",
    "seven lanterns",
    "canoe lantern",
    "MyFavoriteTeacher2024",
    "ilovemymom123",
    "Basketball is life!",
    "soccer soccer soccer",
    "password password",
    "river stone maple cloud",
    "quiet elephant juggles paper moons",
]
REPEATS = "aaaaaaaa abcabcabc 12121212 abcdefgh 987654321 zyxwvuts 11111111 xyzxyzxyz aaaa1111 abcd1234"
SCHOOL = (
    "Springfield2024 Mascot!2025 GoTigers! Tigers2024 Eagles#1 Bulldogs2025 school123 Student2024! "
    "Teacher1! Lincoln2025"
)
#: Like the new password bench/common.reset sets, for bench/reset_cpu.py's student.
RESET_LIKE = [
    (f"Lantern-{random.Random(n).getrandbits(32):08x}-Orchard-{10 + n}", ["s1000001"]) for n in range(20)
]
WORST_CASES = [
    ("1234567890" * 10)[:MAX_CHARS],
    ("p4$$w0rd@!1|" * 10)[:MAX_CHARS],
    "a" * MAX_CHARS,
    ("correcthorse" * 10)[:MAX_CHARS],
]


def sample() -> list[tuple[str, str, list[str]]]:
    """(category, password, user inputs): the same ~200 passwords on every run."""
    rng = random.Random(17)
    alphabet = string.ascii_letters + string.digits + "!@#$%&*?"
    randoms = ["".join(rng.choice(alphabet) for _ in range(n)) for n in (8, 8, 10, 10, 12, 12, 14, 16) * 3]
    groups = {
        "common": COMMON.split(),
        "decorated": DECORATED.split(),
        "leet": LEET.split(),
        "keyboard": KEYBOARD.split(),
        "dates": DATES.split(),
        "names": NAMES.split(),
        "passphrase": PASSPHRASES,
        "repeats": REPEATS.split(),
        "school": SCHOOL.split(),
        "random": randoms,
    }
    found = [(group, password, []) for group, passwords in groups.items() for password in passwords]
    return found + [("names+inputs", password, inputs) for password, inputs in WITH_INPUTS]


# The child: one scorer, stdlib only ----------------------------------------------------------


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _scorer(which: str) -> Any:
    """A function password, inputs -> (score, warning and suggestion count)."""
    if which == "old":
        from zxcvbn import zxcvbn as old

        def score(password: str, inputs: list[str]) -> tuple[int, int]:
            result = old(password, user_inputs=inputs, max_length=MAX_CHARS)
            feedback = result["feedback"]
            return result["score"], len([f for f in [feedback["warning"], *feedback["suggestions"]] if f])

        return score
    from zxcvbn_rs_py import zxcvbn as new

    def score(password: str, inputs: list[str]) -> tuple[int, int]:
        result = new(password, inputs)
        feedback = result.feedback
        advice = [] if feedback is None else [feedback.warning, *feedback.suggestions]
        return int(result.score), len([a for a in advice if a is not None])

    return score


def child(which: str, repeat: int) -> None:
    rss_before = _status("VmRSS")
    score = _scorer(which)
    passwords = sample()
    verdicts = [score(password[:MAX_CHARS], inputs) for _group, password, inputs in passwords]
    peak = _status("VmHWM")
    started = time.process_time()
    for _ in range(repeat):
        for _group, password, inputs in passwords:
            score(password[:MAX_CHARS], inputs)
    per_scoring = (time.process_time() - started) / (repeat * len(passwords))
    started = time.process_time()
    for _ in range(repeat):
        for password, inputs in RESET_LIKE:
            score(password, inputs)
    reset_like = (time.process_time() - started) / (repeat * len(RESET_LIKE))
    worst = []
    for password in WORST_CASES:
        started = time.process_time()
        for _ in range(5):
            score(password, [])
        worst.append((time.process_time() - started) / 5)
    answer = {
        "verdicts": verdicts,
        "cpu_ms": per_scoring * 1000,
        "reset_like_ms": reset_like * 1000,
        "worst_ms": [w * 1000 for w in worst],
        "rss_added_mib": peak - rss_before,
    }
    print(json.dumps(answer))


# The parent ------------------------------------------------------------------------------------


def run_child(python: str, which: str, repeat: int) -> dict[str, Any]:
    command = [python, __file__, "--child", which, "--repeat", str(repeat)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def compare(old: list[list[int]], new: list[list[int]], min_score: int) -> None:
    passwords = sample()
    higher = [(p, o[0], n[0]) for p, o, n in zip(passwords, old, new, strict=True) if n[0] > o[0]]
    lower = [(p, o[0], n[0]) for p, o, n in zip(passwords, old, new, strict=True) if n[0] < o[0]]
    print(f"\n{len(passwords)} passwords: {len(higher) + len(lower)} scores differ")
    print(f"  new scores higher: {len(higher)}; new scores lower: {len(lower)}")
    now_accepted = [(p, o, n) for p, o, n in higher if o < min_score <= n]
    now_refused = [(p, o, n) for p, o, n in lower if n < min_score <= o]
    for title, rows in (("higher", higher), ("lower", lower)):
        print(f"\n  {title} (category, password, old -> new):")
        for (group, password, inputs), o, n in rows:
            note = f" (inputs {inputs})" if inputs else ""
            print(f"    {group:12} {password!r}{note}: {o} -> {n}")
    print(f"\nAt min score {min_score}: {len(now_accepted)} newly accepted, {len(now_refused)} newly refused")
    for (group, password, _inputs), o, n in now_accepted:
        print(f"  newly accepted: {group:12} {password!r} ({o} -> {n})")
    for (group, password, _inputs), o, n in now_refused:
        print(f"  newly refused:  {group:12} {password!r} ({o} -> {n})")
    for threshold in range(1, 5):
        accepted = sum(o[0] < threshold <= n[0] for o, n in zip(old, new, strict=True))
        refused = sum(n[0] < threshold <= o[0] for o, n in zip(old, new, strict=True))
        print(f"  at min score {threshold}: {accepted} newly accepted, {refused} newly refused")
    advice_lost = [p for p, o, n in zip(passwords, old, new, strict=True) if n[0] < 3 and o[1] and not n[1]]
    print(f"  refused by the new scorer with no advice where the old gave some: {len(advice_lost)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--old-python", default=sys.executable, help="an interpreter with zxcvbn installed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5, help="passes over the passwords per round")
    parser.add_argument("--min-score", type=int, default=3)
    args = parser.parse_args()
    if subprocess.run([args.old_python, "-c", "import zxcvbn"], capture_output=True).returncode:
        sys.exit(f"{args.old_python} has no zxcvbn to compare with: see --help for a scratch venv")
    one, five, fifteen = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {one:.2f} {five:.2f} {fifteen:.2f}")
    print(f"{len(sample())} passwords, {args.rounds} alternating rounds of {args.repeat} passes each")
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for number in range(args.rounds):
        order = ("old", "new") if number % 2 == 0 else ("new", "old")
        for which in order:
            python = args.old_python if which == "old" else sys.executable
            runs[which].append(run_child(python, which, args.repeat))
    print("\nCPU per scoring in ms: the sample; a reset's kind of password; 100-character worst cases")
    print("(digits, l33t symbols, aaa, words); RSS added by the import and first scoring, MiB")
    print("scorer           sample  reset-like  worst cases               RSS added")
    for which, name in (("old", "zxcvbn (Python)"), ("new", "zxcvbn-rs-py")):
        cpu = statistics.median(r["cpu_ms"] for r in runs[which])
        worst = [statistics.median(r["worst_ms"][i] for r in runs[which]) for i in range(len(WORST_CASES))]
        rss = statistics.median(r["rss_added_mib"] for r in runs[which])
        reset_like = statistics.median(r["reset_like_ms"] for r in runs[which])
        worst_text = ", ".join(f"{w:.1f}" for w in worst)
        print(f"{name:16} {cpu:6.3f}  {reset_like:10.3f}  {worst_text:24}  {rss:6.1f}")
    old_cpu = statistics.median(r["cpu_ms"] for r in runs["old"])
    new_cpu = statistics.median(r["cpu_ms"] for r in runs["new"])
    print(f"new/old CPU per scoring: {new_cpu / old_cpu:.2f}")
    compare(runs["old"][0]["verdicts"], runs["new"][0]["verdicts"], args.min_score)
    one, five, fifteen = os.getloadavg()
    print(f"\nload average at the end: {one:.2f} {five:.2f} {fifteen:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[4]))
    else:
        main()
