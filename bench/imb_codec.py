"""IMb codec benchmark: our encoder and decoder next to reportlab's encoder.

    .venv/bin/python bench/imb_codec.py [--n 10000] [--seed 1] [--repeat 7] [--json [PATH]]

Draws N random valid payloads (6- and 9-digit mailer IDs, every routing length),
checks that reportlab's ``USPS_4State`` spells exactly our bars for every one
of them and that each decodes back, then times, in the same run on the same
inputs: our encode, reportlab's encode (object plus ``.barcodes``) and our
decode (reportlab has no decoder). Each round times all three in turn and the
best of ``--repeat`` rounds counts, so a busy neighbour on the machine hurts
the rates less; the median round is reported too. Rates are barcodes per second
on one core. ``--n 200 --repeat 1`` checks that it runs (under a second).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumer.core.imb import decode_imb, encode_imb  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "imb_codec.json"


def random_payloads(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)

    def digits(k: int) -> str:
        return "".join(rng.choices("0123456789", k=k))

    payloads = []
    for _ in range(n):
        mid = "9" + digits(8) if rng.random() < 0.2 else rng.choice("012345678") + digits(5)
        tracking = digits(1) + rng.choice("01234") + digits(3) + mid + digits(15 - len(mid))
        payloads.append((tracking, digits(rng.choice((0, 5, 9, 11)))))
    return payloads


def reportlab_encoder() -> Callable[[str, str], str]:
    try:
        from reportlab.graphics.barcode.usps4s import USPS_4State
    except ImportError:
        raise SystemExit("reportlab is not installed: .venv/bin/pip install reportlab") from None

    def encode(tracking: str, routing: str) -> str:
        bars: str = USPS_4State(tracking, routing).barcodes
        return bars

    return encode


def check(payloads: list[tuple[str, str]], reportlab: Callable[[str, str], str]) -> None:
    for tracking, routing in payloads:
        ours = encode_imb(tracking, routing)
        if reportlab(tracking, routing) != ours:
            raise SystemExit(f"reportlab disagrees on {tracking} {routing!r}")
        if decode_imb(ours).imb.digits != tracking + routing:
            raise SystemExit(f"{ours} does not decode back to {tracking} {routing!r}")


def seconds(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="barcodes per round")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=7, help="rounds; the best one counts")
    parser.add_argument(
        "--json",
        nargs="?",
        type=Path,
        const=DEFAULT_JSON,
        help=f"write results (to {DEFAULT_JSON})",
    )
    args = parser.parse_args()

    payloads = random_payloads(args.n, args.seed)
    reportlab = reportlab_encoder()
    check(payloads, reportlab)
    bars = [encode_imb(tracking, routing) for tracking, routing in payloads]

    # Plain loops that drop each result: what a stream does, and no garbage
    # collector passes over a growing list of results.
    def ours_encode() -> None:
        for tracking, routing in payloads:
            encode_imb(tracking, routing)

    def reportlab_encode() -> None:
        for tracking, routing in payloads:
            reportlab(tracking, routing)

    def ours_decode() -> None:
        for read in bars:
            decode_imb(read)

    runs = {
        "encode_ours": ours_encode,
        "encode_reportlab": reportlab_encode,
        "decode_ours": ours_decode,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, run in runs.items():
            times[name].append(seconds(run))

    rates = {
        name: {
            "best_per_s": args.n / min(t),
            "median_per_s": args.n / statistics.median(t),
            "best_us": min(t) / args.n * 1e6,
        }
        for name, t in times.items()
    }
    ratio_best = rates["encode_ours"]["best_per_s"] / rates["encode_reportlab"]["best_per_s"]
    ratio_median = rates["encode_ours"]["median_per_s"] / rates["encode_reportlab"]["median_per_s"]

    load = os.getloadavg()[0]
    print(f"IMb codec, {args.n:,} random barcodes x {args.repeat} rounds, seed {args.seed}")
    print(f"load average at the end: {load:.2f} on {os.cpu_count()} CPUs")
    print(f"reportlab {version('reportlab')}: same bars as ours on all {args.n:,} inputs")
    print()
    print(f"{'':18} {'best /s':>10} {'median /s':>10} {'us (best)':>10}")
    for name, rate in rates.items():
        print(
            f"{name:18} {rate['best_per_s']:>10,.0f} {rate['median_per_s']:>10,.0f}"
            f" {rate['best_us']:>10.2f}"
        )
    print()
    print(f"encode ours / reportlab: {ratio_best:.1f}x (best), {ratio_median:.1f}x (median)")

    if args.json:
        result = {
            "n": args.n,
            "seed": args.seed,
            "repeat": args.repeat,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average": load,
            "reportlab": version("reportlab"),
            "reportlab_matches": True,
            "rates": rates,
            "encode_ratio_best": ratio_best,
            "encode_ratio_median": ratio_median,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
