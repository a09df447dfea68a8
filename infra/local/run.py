#!/usr/bin/env python3
"""Starts template.yaml's topology on 127.0.0.1 (make run-aws); see infra/local/README.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from topology.main import main  # noqa: E402

raise SystemExit(main())
