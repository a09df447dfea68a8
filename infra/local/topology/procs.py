"""Child processes: the moto server, free ports, log forwarding."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LineSink:
    """Where child output goes: one file per child, or this process's stderr with a prefix."""

    def __init__(self, log_dir: Path | None):
        self.log_dir = log_dir
        self._lock = threading.Lock()
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)

    def forward(self, name: str, stream: IO[bytes]) -> threading.Thread:
        if self.log_dir:
            out = open(self.log_dir / f"{name}.log", "ab", buffering=0)
        else:
            out = None

        def pump() -> None:
            try:
                for line in iter(stream.readline, b""):
                    if out:
                        out.write(line)
                    else:
                        with self._lock:
                            sys.stderr.buffer.write(f"[{name}] ".encode() + line)
                            sys.stderr.buffer.flush()
            except (OSError, ValueError):
                pass
            finally:
                if out:
                    out.close()

        t = threading.Thread(target=pump, name=f"log-{name}", daemon=True)
        t.start()
        return t


# moto exits with the process that started it, however that one ends.
# moto, serving DynamoDB requests one at a time (its backend is not safe under concurrent requests).
_MOTO_SERVER = Path(__file__).resolve().parent.parent / "moto_server.py"


class MotoServer:
    def __init__(self, python: str, port: int, sink: LineSink, access_log: bool = False, iam: bool = False):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        # AWS managed policies (AWSLambdaBasicExecutionRole, which SAM attaches) exist on moto only with this.
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        # Ready for IAM enforcement (moto_iam.py); it starts when the topology switches it on.
        env.pop("FOLLOWUP_MOTO_IAM", None)
        if iam:
            env["FOLLOWUP_MOTO_IAM"] = "1"
        self.proc = subprocess.Popen(
            [python, str(_MOTO_SERVER), str(self.port), "access-log" if access_log else "quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # stopped by the topology, not by the terminal's Ctrl-C
        )
        sink.forward("moto", self.proc.stdout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto exited with status {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1) as r:
                    if r.status < 500:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto did not answer on {self.endpoint} within {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen, grace: float = 3.0) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass
