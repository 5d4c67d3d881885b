"""Hostile job data end to end through real worker processes: every value reaches the command
exactly (bytes compared) whether its placeholder stands bare, in '...' or in "...", and
runs nothing; NUL and values too big for a command line fail that job with a clear error
while the worker lives on; secrets in the worker's environment do not reach commands.
Catalogue items 30 and 38."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from statemachine_engine.database.sqlite import SQLiteStore
from statemachine_engine.errors import StoreError

CONTEXTS = {
    "bare": "printf %s {data.x} > out/{job_id}",
    "sq": "printf %s '{data.x}' > out/{job_id}",
    "dq": 'printf %s "{data.x}" > out/{job_id}',
}

HOSTILE = {
    "squote": "'",
    "dquote": '"',
    "quotes": "it's \"quoted\" '' \"\" '\\''",
    "subst": "$(touch pwned)",
    "backticks": "`touch pwned`",
    "semicolon": "a; touch pwned",
    "pipe": "a | touch pwned && touch pwned || touch pwned",
    "newlines": "line1\nline2\n\ntouch pwned\n",
    "rf": "-rf",
    "glob": "*",
    "tilde": "~",
    "vars": "$HOME ${HOME} $1 $@ !! \\$HOME",
    "backslash": "\\ \\\\ \\n \\'",
    "printf": "%s %d %n %%",
    "unicode": "ünïcödé \u202eRTL\u202c 日本 🚀",
    "non_utf8": "\udcff\udcfe bytes",
    "empty": "",
    "spaces": "  two  spaces  ",
    "braces": "{data.x} {job_id} {{}}",
    "big": "x" * (127 * 1024),
}

FAILING = {
    "nul": ("a\x00b", "NUL"),
    "too_big": ("y" * (200 * 1024), "bytes"),
}


@pytest.mark.timeout(60)
def test_hostile_values_reach_the_command_exactly_and_run_nothing(
    procs: Any, db: SQLiteStore, workdir: Path, kit: Any
) -> None:
    (workdir / "out").mkdir()
    workers = []
    for context, command in CONTEXTS.items():
        config = procs.config(context, kit.worker_yaml(command, job_type=context))
        for case, value in HOSTILE.items():
            db.add_job(context, {"x": value}, job_id=f"{context}-{case}")
        for case, (value, _) in FAILING.items():
            db.add_job(context, {"x": value}, job_id=f"{context}-{case}", max_attempts=1)
        workers.append(procs.machine(config, context))
    with pytest.raises(StoreError, match="limit"):
        db.add_job("bare", {"x": "z" * (1024 * 1024)}, job_id="huge")

    total = len(CONTEXTS) * (len(HOSTILE) + len(FAILING))
    kit.wait_until(
        lambda: db.count_jobs()["completed"] + db.count_jobs()["failed"] == total,
        40,
        "every hostile job finished",
    )
    for context in CONTEXTS:
        for case, value in HOSTILE.items():
            job_id = f"{context}-{case}"
            job = db.get_job(job_id)
            assert job is not None and job.status == "completed", (job_id, job)
            got = (workdir / "out" / job_id).read_bytes()
            assert got == value.encode("utf-8", "surrogateescape"), job_id
        for case, (_, message) in FAILING.items():
            job = db.get_job(f"{context}-{case}")
            assert job is not None and job.status == "failed", job
            assert job.error_message is not None and message in job.error_message
            assert "data.x" in job.error_message, "the error names the value"
    assert not list(workdir.rglob("pwned")), "a value ran a command"
    assert all(w.poll() is None for w in workers), "every worker alive"


@pytest.mark.timeout(30)
def test_secrets_in_the_worker_environment_do_not_reach_commands(
    procs: Any, db: SQLiteStore, workdir: Path, env: dict[str, str], kit: Any
) -> None:
    secrets = {
        "STATEMACHINE_UI_TOKEN": "ui-token-secret",
        "PGPASSWORD": "pg-password-secret",
        "STATEMACHINE_DB": "postgresql://user:db-password-secret@localhost/x",
    }
    command = "env > env-{job_id}.txt"
    plain = procs.config("plain", kit.worker_yaml(command, job_type="plain"))
    opted = procs.config(
        "opted",
        kit.worker_yaml(command, job_type="opted").replace(
            "success: job_done", "success: job_done\n          pass_env: [PGPASSWORD]"
        ),
    )
    db.add_job("plain", job_id="p1")
    db.add_job("opted", job_id="o1")
    procs.machine(plain, "plain", env={**env, **secrets})
    procs.machine(opted, "opted", env={**env, **secrets})
    kit.wait_until(lambda: db.count_jobs()["completed"] == 2, 15, "both jobs completed")
    seen = (workdir / "env-p1.txt").read_text()
    assert "STATEMACHINE_JOB_ID=p1" in seen
    for value in secrets.values():
        assert value not in seen
    opted_env = (workdir / "env-o1.txt").read_text()
    assert "PGPASSWORD=pg-password-secret" in opted_env
    assert "ui-token-secret" not in opted_env and "db-password-secret" not in opted_env
