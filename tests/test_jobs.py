"""An experiment runs as a Ray job on a local ``ray start --head``, with token authentication on.

What a user does (docs/local.md): ``ray get-auth-token --generate`` writes ``~/.ray/auth_token``;
``ray start --head`` finds it and turns token authentication on; ``RAY_AUTH_MODE=token`` makes
``ray job submit`` send it (``Authorization: Bearer <token>``); the dashboard's HTTP API refuses
requests without it. This test does exactly that with its own head (own ports, own temp dir) and
its own home folder, so it neither reads the user's token nor touches the session-wide Ray of
the other tests: only the subprocesses get the environment, never this process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "bohb_k49.py"
# What experiments/bohb_k49.py --smoke writes: <script>-<smoke preset>/ and <script>-table.csv.
SWEEP_DIR, TABLE = "bohb_k49-2_1_2_2", "bohb_k49-table.csv"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
JOB_TIMEOUT_S = 360  # the smoke run takes about a minute on 2 cores

pytestmark = pytest.mark.slow

# Inherited settings that would point the subprocesses at another cluster or another token.
_RAY_CLIENT_VARS = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
                    "RAY_AUTH_TOKEN_PATH", "RAY_JOB_HEADERS")


def _ray_cli() -> str:
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        pytest.skip("the `ray` command is not installed")
    return found


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _get(url: str, token: str | None = None, timeout: float = 10, method: str = "GET"):
    """GET ``url``; returns (status, body). ``token`` goes in the ``Authorization`` header."""
    req = urllib.request.Request(url, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _session_pids(sid: int) -> list[int]:
    """Processes of session ``sid`` (Linux: from /proc; elsewhere none are found)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.getsid(int(entry.name)) == sid:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _stop_head(head: subprocess.Popen) -> None:
    """SIGTERM to ``ray start --block`` stops its node; then SIGKILL whatever is left of the
    session the head was started in (only this test's processes: it got a session of its own)."""
    if head.poll() is None:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=45)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(timeout=10)
    for _ in range(3):
        leftovers = _session_pids(head.pid)
        if not leftovers:
            return
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(1)


def test_smoke_experiment_as_ray_job_with_token_auth(tmp_path):
    ray = _ray_cli()
    home, storage, data = tmp_path / "home", tmp_path / "results", tmp_path / "data"
    for folder in (home, storage, data):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in _RAY_CLIENT_VARS}
    env["HOME"] = str(home)  # ~/.ray/auth_token of this test, not the user's

    # 1. The token, as a user makes it: written to ~/.ray/auth_token and printed.
    gen = subprocess.run([ray, "get-auth-token", "--generate"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert gen.returncode == 0, gen.stderr
    token_file = home / ".ray" / "auth_token"
    token = token_file.read_text().strip()
    assert token and gen.stdout.strip() == token

    # 2. A head with the dashboard. RAY_AUTH_MODE is unset: the existing token turns auth on.
    gcs, dash, client, agent = _free_ports(4)
    # Ray's session folder holds Unix sockets, whose paths must stay under 108 bytes.
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    head_log = tmp_path / "head.log"
    with open(head_log, "w") as log:
        head = subprocess.Popen(
            [ray, "start", "--head", "--block", f"--port={gcs}", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={dash}", f"--ray-client-server-port={client}",
             f"--dashboard-agent-listen-port={agent}", "--include-dashboard=true",
             "--num-cpus=2", "--num-gpus=0", f"--object-store-memory={300 * 2**20}",
             f"--temp-dir={ray_tmp}", "--disable-usage-stats"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{dash}"
    submission_id, info = f"automl-chars-test-{uuid.uuid4().hex[:8]}", {}
    try:
        deadline = time.monotonic() + 120
        while True:
            assert head.poll() is None, "ray start exited:\n" + head_log.read_text()[-4000:]
            try:
                status, body = _get(f"{api}/api/authentication_mode", timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no dashboard:\n" + head_log.read_text()[-4000:]
            time.sleep(1)
        assert json.loads(body) == {"authentication_mode": "token"}

        # 3. The jobs API refuses requests without the token (401) or with a wrong one (403).
        assert _get(f"{api}/api/jobs/")[0] == 401
        assert _get(f"{api}/api/jobs/", token="not-the-token")[0] == 403
        status, body = _get(f"{api}/api/jobs/", token=token)
        assert status == 200, body

        # 4. Submit the experiment's smoke run with the jobs CLI, authenticated via RAY_AUTH_MODE.
        runtime_env = {"env_vars": {"AUTOML_CHARS_DATA": str(data)}}
        submit = subprocess.run(
            [ray, "job", "submit", "--no-wait", "--address", api,
             "--submission-id", submission_id, "--runtime-env-json", json.dumps(runtime_env),
             "--", sys.executable, str(SCRIPT), "--smoke", "--storage", str(storage),
             "--verbose", "0"],
            env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=120)
        assert submit.returncode == 0, submit.stdout + submit.stderr

        # 5. Follow it through the dashboard's jobs API until it ends.
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while info.get("status") not in TERMINAL:
            assert time.monotonic() < deadline, f"job {info.get('status')} after {JOB_TIMEOUT_S} s"
            time.sleep(2)
            status, body = _get(f"{api}/api/jobs/{submission_id}", token=token)
            assert status == 200, body
            info = json.loads(body)
        if info["status"] != "SUCCEEDED":
            _, logs = _get(f"{api}/api/jobs/{submission_id}/logs", token=token)
            pytest.fail(f"job {info['status']}: {info.get('message')}\n{logs[-6000:]}")
        assert info["entrypoint"].endswith("--verbose 0")
    finally:
        if info.get("status") not in TERMINAL:
            # The job's driver runs in a session of its own: stop it before the head goes.
            try:
                _get(f"{api}/api/jobs/{submission_id}/stop", token=token, method="POST")
                time.sleep(5)
            except OSError:
                pass
        _stop_head(head)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    # 6. The finished sweep's folder, its summary and the experiment's table.
    assert (storage / SWEEP_DIR / "summary.json").is_file()
    assert (storage / TABLE).is_file()
