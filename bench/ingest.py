"""Superseded by bench/run.py, the end-to-end benchmark; kept for command lines that name it.

    .venv/bin/python bench/ingest.py [--quick | --tiny] [--events N] [--skip-kcat]  # = bench/run.py

The old harness ran the service without a feeds file (which it now refuses) and compared it
with a bare aiokafka producer; bench/run.py runs it as in production and compares it with
kcat. Every argument is passed on (``make bench`` runs bench/run.py itself).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import main

if __name__ == "__main__":
    sys.exit(main())
