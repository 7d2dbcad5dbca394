"""``selfservice serve``: gunicorn as docs/deployment.md runs it.

Its workers run with ``PYTHONOPTIMIZE=2`` on bytecode written before they start, with
WEB_WORKERS equal to ``--workers``, and with the access log that keeps reset tokens out.
``tests/deploy``'s other instances start the same way, so their resets, sign-ins and API
calls also run on ``-OO`` workers.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

import selfservice.portal.views
from selfservice.serving import gunicorn_argv, optimize_level, worker_environment
from tests.deploy.instances import SELFSERVICE, _wait_until_serving, worker_pids
from tests.scratch import free_port

TOKEN = "IjEyMzQ1Njc4OTAi.Zx9aBc.secret-reset-token-value"


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def environ_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


@pytest.mark.slow
def test_serve_runs_optimized_workers_on_precompiled_bytecode_and_keeps_tokens_out_of_the_log(
    tmp_path: Path,
) -> None:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SELFSERVICE_", "PYTHONOPTIMIZE"))}
    environment = inherited | {
        "SELFSERVICE_SECRET_KEY": "serve-test-secret-0123456789abcdefghijkl",
        "SELFSERVICE_BASE_URL": "https://password.school.test",
        "SELFSERVICE_INSTANCE_PATH": str(tmp_path),
        "SELFSERVICE_DATABASE_URL": f"sqlite:///{tmp_path}/serve.sqlite",
        "PYTHONDONTWRITEBYTECODE": "1",  # workers write no bytecode themselves: only serve does
    }
    # The worker count comes from the instance's config.toml when --workers is not given.
    (tmp_path / "config.toml").write_text(
        f'web_workers = 2\nratelimit_storage_uri = "redis://127.0.0.1:6379/0"\n'
        f'ratelimit_key_prefix = "serve-{uuid.uuid4().hex[:8]}"\n'
    )
    subprocess.run([SELFSERVICE, "db", "upgrade"], env=environment, check=True, capture_output=True)
    compiled = Path(importlib.util.cache_from_source(selfservice.portal.views.__file__, optimization=2))
    compiled.unlink(missing_ok=True)
    port = free_port()
    argv = [SELFSERVICE, "serve", "--bind", f"127.0.0.1:{port}", "--", "--no-control-socket"]
    process = subprocess.Popen(
        [*argv, "--access-logfile", "-"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process)
        assert get(url + "/healthz") == 200
        get(f"{url}/forgot/reset/{TOKEN}")
        workers = worker_pids(process.pid)
        assert len(workers) == 2
        for worker in workers:
            seen = environ_of(worker)
            assert seen["PYTHONOPTIMIZE"] == "2"
            assert seen["SELFSERVICE_WEB_WORKERS"] == "2"
        assert compiled.is_file(), "serve did not write the -OO bytecode before the workers started"
    finally:
        process.terminate()
        log, errors = process.communicate(timeout=30)
    assert "/forgot/reset/" in log, errors[-2000:]
    assert TOKEN not in log
    assert "secret-reset-token-value" not in errors


def test_the_operator_can_turn_optimisation_off_and_workers_agree_with_gunicorn() -> None:
    assert worker_environment({})["PYTHONOPTIMIZE"] == "2"
    assert worker_environment({"PYTHONOPTIMIZE": "0"})["PYTHONOPTIMIZE"] == "0"
    assert worker_environment({"SELFSERVICE_WEB_WORKERS": "1"}, 4)["SELFSERVICE_WEB_WORKERS"] == "4"
    assert [optimize_level({"PYTHONOPTIMIZE": text}) for text in ("", "0", "1", "2", "x")] == [0, 0, 1, 2, 1]


def test_gunicorn_gets_the_redacted_logger_and_the_operators_options_before_the_app() -> None:
    argv = gunicorn_argv("0.0.0.0:8000", 3, threads=4, extra=["--timeout", "60"])
    assert argv[1:3] == ["-m", "gunicorn"]
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[argv.index("--threads") + 1] == "4"
    assert argv[argv.index("--logger-class") + 1] == "selfservice.site.accesslog.RedactedLogger"
    assert argv[-3:] == ["--timeout", "60", "selfservice.wsgi:app"]
    assert "--threads" not in gunicorn_argv("127.0.0.1:8000", 1)
    assert "--logger-class" not in gunicorn_argv("127.0.0.1:8000", 1, logger_class=None)


@pytest.mark.slow
def test_compile_only_writes_the_bytecode_and_starts_nothing() -> None:
    compiled = Path(importlib.util.cache_from_source(selfservice.portal.views.__file__, optimization=2))
    compiled.unlink(missing_ok=True)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONOPTIMIZE"}
    done = subprocess.run(
        [SELFSERVICE, "serve", "--compile-only"], env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bytecode written"
    assert compiled.is_file()
