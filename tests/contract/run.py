#!/usr/bin/env python3
"""The published contract, tested from outside: Schemathesis against followup-local's /openapi.json.

Starts followup-local on 127.0.0.1 (a free port, a fresh data directory, the real clock), posts
the samples of events/ so the case routes have cases to show, puts signing_proxy.py in front of
it, and runs Schemathesis with every check on through the proxy, with the hooks of hooks.py and
the accepted failures of baseline.json (refusals that depend on state, each with its reason).
Any other failure, any server error, any answer the document does not describe fails the run.

    run.py [--max-examples N] [--seed S] [--max-time SECONDS]   (make test: a short budget; make fuzz: a long one)

Exit status: Schemathesis's. Its reports (JUnit) go to target/contract/.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import signing_proxy  # noqa: E402

SECRET = "contract-test-secret"


def start_engine(binary, data_dir):
    env = dict(os.environ, FOLLOWUP_ADDR="127.0.0.1:0", FOLLOWUP_DATA_DIR=data_dir, FOLLOWUP_WEBHOOK_SECRET=SECRET)
    env.pop("FOLLOWUP_VIRTUAL_CLOCK", None)
    env.pop("FOLLOWUP_CONFIG", None)
    log = open(os.path.join(data_dir, "engine.log"), "wb")
    engine = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=log)
    line = engine.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        engine.kill()
        sys.exit(f"followup-local did not start: {line!r} (its log: {log.name})")
    address = line.removeprefix("listening on ")
    return engine, address if address.startswith("http") else "http://" + address


def post_samples(url):
    """Posts the webhook samples of events/ (events/send signs them), so the case routes have cases
    to show. They are several stories over the same subjects, so some are refused (422) for the
    state the others left: only a server error stops the run."""
    samples = []
    for path in sorted(glob.glob(os.path.join(ROOT, "events", "*.json"))):
        with open(path) as f:
            if {"id", "type", "occurred_at", "data"} <= json.load(f).keys():
                samples.append(path)
    sent = subprocess.run(
        [sys.executable, os.path.join(ROOT, "events", "send"), "--url", url, "--secret", SECRET, *samples],
        capture_output=True, text=True,
    )
    statuses = [line.split()[1] for line in sent.stdout.splitlines() if len(line.split()) > 1]
    if len(statuses) != len(samples) or any(not s.isdigit() or int(s) >= 500 for s in statuses):
        sys.exit(f"the samples of events/ did not all get an answer below 500:\n{sent.stdout}{sent.stderr}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25, help="generated cases per operation and phase [%(default)s]")
    parser.add_argument("--seed", type=int, default=1, help="Schemathesis's seed [%(default)s]")
    parser.add_argument("--max-time", type=int, help="a time budget for the whole run, in seconds")
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "debug", "followup-local"))
    parser.add_argument("--schemathesis", default=os.path.join(ROOT, ".venv-schemathesis", "bin", "schemathesis"))
    args = parser.parse_args()
    reports = os.path.join(ROOT, "target", "contract")
    # Schemathesis writes to its baseline (when each failure was last seen): it gets a copy.
    os.makedirs(reports, exist_ok=True)
    baseline = shutil.copy(os.path.join(HERE, "baseline.json"), os.path.join(reports, "baseline.json"))
    with tempfile.TemporaryDirectory(prefix="followup-contract-") as data_dir:
        engine, url = start_engine(args.binary, data_dir)
        post_samples(url)
        proxy = signing_proxy.serve(url, SECRET)
        proxied = f"http://127.0.0.1:{proxy.server_address[1]}"
        try:
            command = [
                args.schemathesis, "--config-file", os.path.join(HERE, "schemathesis.toml"), "run", proxied + "/openapi.json",
                "--checks", "all", "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                "--baseline", baseline, "--workers", "1",
                "--report", "junit", "--report-dir", reports, "--no-color",
            ]
            if args.max_time:
                command += ["--max-time", str(args.max_time)]
            env = dict(os.environ, SCHEMATHESIS_HOOKS="hooks", PYTHONPATH=HERE)
            started = time.monotonic()
            status = subprocess.call(command, env=env)
            print(f"contract: schemathesis exited {status} after {time.monotonic() - started:.0f} s; reports in {reports}")
        finally:
            proxy.shutdown()
            engine.terminate()
            if engine.wait(timeout=30) not in (0, -15):
                print(f"followup-local exited {engine.returncode}; its log was {os.path.join(data_dir, 'engine.log')}")
    return status


if __name__ == "__main__":
    sys.exit(main())
