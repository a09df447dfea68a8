"""Command line: start the topology, print where it listens, run until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from .timers import iso, parse_time
from .topology import REPO, Options, Topology


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        raise argparse.ArgumentTypeError(f"{text!r}: give host:port")
    return host, int(port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="run-aws", description=__doc__)
    p.add_argument("--addr", type=_addr, default=_addr(os.environ.get("FOLLOWUP_AWS_ADDR", "127.0.0.1:3001")),
                   help="the front's listen address (env FOLLOWUP_AWS_ADDR; default 127.0.0.1:3001; port 0 picks one)")
    p.add_argument("--moto-port", type=int, default=int(os.environ.get("FOLLOWUP_MOTO_PORT", "0")),
                   help="moto's port on 127.0.0.1 (env FOLLOWUP_MOTO_PORT; default: a free one)")
    p.add_argument("--secret", default=os.environ.get("FOLLOWUP_WEBHOOK_SECRET", "local-dev-secret"),
                   help="the webhook secret stored under WebhookSecretName (env FOLLOWUP_WEBHOOK_SECRET)")
    p.add_argument("--virtual-clock", default=os.environ.get("FOLLOWUP_VIRTUAL_CLOCK") or None, metavar="RFC3339|now",
                   help="schedules fire on a clock that moves only through POST /_local/clock (env FOLLOWUP_VIRTUAL_CLOCK)")
    p.add_argument("--policy", type=Path, default=os.environ.get("FOLLOWUP_CONFIG") or None, metavar="TOML",
                   help="the policy file every function reads, as a deployment would package one (env FOLLOWUP_CONFIG; "
                        "default: the SPEC's policy)")
    p.add_argument("--template", type=Path, default=REPO / "template.yaml")
    p.add_argument("--bin-dir", type=Path, default=REPO / "target" / "debug", help="where the function binaries are")
    p.add_argument("--shipped", type=Path, default=os.environ.get("FOLLOWUP_SHIPPED_DIR") or None, metavar="DIR",
                   help="run the release zips as make build ships them, unpacked to DIR/<binary>/bootstrap, instead of "
                        "--bin-dir's host build (env FOLLOWUP_SHIPPED_DIR; make test-shipped)")
    p.add_argument("--emulator", default=os.environ.get("FOLLOWUP_LAMBDA_EMULATOR") or None, metavar="COMMAND",
                   help="what each function binary runs under, e.g. 'qemu-aarch64-static -L /usr/aarch64-linux-gnu' "
                        "(env FOLLOWUP_LAMBDA_EMULATOR; default: nothing for a binary of this machine, qemu-user for an "
                        "aarch64 one elsewhere)")
    p.add_argument("--no-iam", action="store_true", default=os.environ.get("FOLLOWUP_IAM") == "0",
                   help="leave IAM unenforced: every function on moto's dummy credentials (env FOLLOWUP_IAM=0)")
    p.add_argument("--stack-name", default="followup-local")
    p.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE", help="a template parameter override")
    p.add_argument("--log-dir", type=Path, help="one log file per process here, instead of prefixed lines on stderr")
    p.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started this one ends")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logs, and moto's access log")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    virtual = None
    if args.virtual_clock:
        virtual = datetime.now(timezone.utc) if args.virtual_clock == "now" else parse_time(args.virtual_clock)
    opts = Options(
        template=args.template, bin_dir=args.bin_dir, host=args.addr[0], port=args.addr[1], moto_port=args.moto_port,
        stack_name=args.stack_name, secret=args.secret, virtual_start=virtual, log_dir=args.log_dir,
        parameters=dict(kv.split("=", 1) for kv in args.parameter), moto_access_log=args.verbose, policy=args.policy,
        shipped=args.shipped is not None, emulator=tuple(shlex.split(args.emulator)) if args.emulator else None,
        iam=not args.no_iam,
    )
    if args.shipped is not None:
        opts.bin_dir = args.shipped
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with_parent:
        parent = os.getppid()

        def watch() -> None:
            while not stop.wait(0.5):
                if os.getppid() != parent:
                    stop.set()

        threading.Thread(target=watch, daemon=True).start()

    topo = Topology(opts)
    try:
        topo.start()
    except Exception as e:
        logging.getLogger("topology").error("start-up failed: %s", e, exc_info=args.verbose)
        topo.stop()
        return 1
    print(f"front: {topo.front.url}", flush=True)
    print(f"webhook secret: {topo.secret}", flush=True)
    print(f"moto: {topo.moto.endpoint}", flush=True)
    print(f"iam: {'enforced, each function on its own role' if topo.access.enforced else 'not enforced'}", flush=True)
    print(f"clock: {'virtual, at ' + iso(topo.clock.now()) if topo.clock.virtual else 'real'}", flush=True)
    print("control: GET /_local/ lists the endpoints; Ctrl-C stops everything", flush=True)
    while not stop.wait(0.5):
        pass
    logging.getLogger("topology").info("stopping")
    topo.stop()
    return 0
