#!/usr/bin/env python3
"""The long soak: push+pull rounds through the seeded fault proxy at several fault rates.

    PYTHONPATH=. python scripts/soak.py --rounds 40 --rate 0.05 --rate 0.15 --rate 0.35 --seed 7

Starts its own registry (Debian's docker-registry) and fault proxy; per rate prints the
outcomes (exit codes of push and pull, byte-identical pulls), the faults injected by kind,
and the result of reading every pushed manifest directly from the registry. Exit status 0
when every round of every rate succeeded and every manifest is whole. The CI soak
(tests/test_soak.py) runs the same rounds, fewer of them. Figures: docs/testing.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fault_proxy import KINDS, FaultProxy
from tests.support.registry import start_registry
from tests.support.soak import soak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=40, help="push+pull rounds per rate (default 40)")
    ap.add_argument("--rate", type=float, action="append", help="fault rate, repeatable (default 0.05)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"fault kinds (default: all: {','.join(KINDS)})")
    ap.add_argument("--retries", help="STELLA_OCI_RETRIES for the CLI (default: the CLI's)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()
    rates = args.rate or [0.05]
    kinds = tuple(k for k in args.kinds.split(",") if k)
    env = {"STELLA_OCI_RETRIES": args.retries} if args.retries else {}
    report = []
    all_ok = True
    with tempfile.TemporaryDirectory(prefix="stella-soak-") as tmp:
        for i, rate in enumerate(rates):
            work = Path(tmp) / f"rate-{i}"
            reg = start_registry(work / "reg")
            proxy = FaultProxy(reg.host)
            try:
                res = soak(
                    reg.host,
                    proxy,
                    work,
                    rounds=args.rounds,
                    rate=rate,
                    seed=args.seed + i,
                    kinds=kinds,
                    env=env,
                    log=True,
                )
            finally:
                proxy.stop()
                reg.stop()
            row = {
                "rate": rate,
                "seed": args.seed + i,
                "rounds": args.rounds,
                "ok": res.ok,
                "outcomes": dict(res.outcomes()),
                "requests": res.requests,
                "faults": dict(sorted(res.faults.items())),
                "manifests_whole": res.whole_manifests,
                "manifests_broken": res.broken_manifests,
                "seconds": round(res.seconds, 1),
            }
            report.append(row)
            all_ok = all_ok and res.ok == args.rounds and not res.broken_manifests
            print(json.dumps(row), flush=True)
            for r in res.rounds:
                if not (r.push_exit == 0 and r.pull_exit == 0 and r.identical):
                    print(f"  round {r.n}: push {r.push_exit} pull {r.pull_exit}\n{r.stderr}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
