"""benchmarks/issue15.py's verdicts and readme_table.py's rewrite, from a made-up run (no timing).

The benchmark itself is run on demand; what a test can pin is the arithmetic: which ratio is
computed from which measurements, and where the boundary between PASS and MISS lies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import issue15  # noqa: E402
import readme_table  # noqa: E402


def run_doc(
    big_push_stella: float = 1.14, many_stella: float = 5.0, verify_5g: float = 10.0
) -> dict[str, Any]:
    def scale_row(kind: str, n: int, verify: float, rss: float = 60.0) -> dict[str, Any]:
        op = {"wall_s": 2.0 * n / (2500 if kind == "files" else 1024), "peak_rss_MB": rss}
        row: dict[str, Any] = {"kind": kind, "n": n, "payload_bytes": n, "push": op, "pull": op}
        row["verify"] = {"wall_s": verify, "peak_rss_MB": rss}
        return row

    return {
        "sections": {
            "latency": {
                "config": {"files": 300, "file_kib": 32, "rtt_ms": 40.0},
                "median_wall_s": {"stella-oci": 2.0, "oras-py": 40.0},
                "ideal_s": 1.5,
                "ideal_formula": "2 x 300 / 16 x 40 ms",
                "requests_per_new_blob": {
                    "stella-oci": [
                        {
                            "HEAD blob": 0.01,
                            "POST upload": 1.0,
                            "PATCH upload": 0.01,
                            "PUT upload": 1.0,
                            "upload_requests": 2.01,
                            "blob_requests": 2.02,
                        }
                    ],
                    "oras-py": [{"blob_requests": 3.0}],
                },
            },
            "big": {
                "sizes_mib": [512, 1024],
                "median_wall_s": {
                    "512/push/stella-oci": 2.0 * big_push_stella,
                    "512/push/raw-requests": 2.0,
                    "1024/push/stella-oci": 4.6,
                    "1024/push/raw-requests": 4.0,
                },
                "median_peak_rss_MB": {},
                "max_peak_rss_MB": {"1024/push/stella-oci": 99.0, "1024/push/raw-requests": 30.0},
            },
            "many": {
                "files": 2000,
                "file_kib": 32,
                "median_wall_s": {"stella-oci": many_stella, "raw-requests-8t": 4.5, "oras-py": 10.0},
                "median_peak_rss_MB": {},
            },
            "scale": {
                "file_kib": 32,
                "rows": [
                    {**scale_row("files", 2500, 2.0), "manifest_bytes": 500_000},
                    {**scale_row("files", 10000, 8.0), "manifest_bytes": 2_000_000},
                    scale_row("bytes", 1024, 2.0),
                    scale_row("bytes", 5120, verify_5g),
                ],
                "refusal": {"files": 30000, "exit": 2, "wall_s": 1.0, "refused_before_hashing": True},
            },
        }
    }


def verdicts(doc: dict[str, Any]) -> dict[str, tuple[Any, bool | None]]:
    return {g["id"]: (g["value"], g["pass"]) for g in issue15.goals(doc)}


def test_each_ratio_is_computed_from_its_measurements() -> None:
    v = verdicts(run_doc())
    assert v["a1"] == (20.0, True)  # oras-py 40 s / stella-oci 2 s, goal >= 10x
    assert v["a2"] == (1.3333, True)  # 2 s / ideal 1.5 s, goal <= 1.5x
    assert v["a3"] == (2.01, False)  # POST + PATCH + PUT per new blob (probes apart), goal <= 2
    assert v["b1"] == (1.14, True)
    assert v["b2"] == (1.15, True)  # 4.6 / 4.0: the boundary itself passes
    assert v["b3"] == (99.0, True)  # peak RSS < 100 MB
    assert v["c1"] == (1.1111, True)  # 5.0 / 4.5 floor
    assert v["c2"] == (2.0, True)  # 10 / 5 oras-py
    assert v["e1"] == (0.4768, True)  # 2,000,000 bytes of 4 MiB
    assert v["e2"] == (1.0, True)
    assert v["e5"] == (1.0, True)  # files verify: 4x the time for 4x the files


@pytest.mark.parametrize(
    ("change", "gid"),
    [
        ({"big_push_stella": 1.16}, "b1"),
        ({"many_stella": 5.2}, "c1"),  # 1.16x the floor
        ({"many_stella": 5.1}, "c2"),  # oras-py 1.96x
        ({"verify_5g": 13.0}, "e9"),  # 6.5x the time for 5x the bytes: 1.3 > 1.25
    ],
)
def test_a_ratio_past_its_goal_is_a_miss(change: dict[str, float], gid: str) -> None:
    assert verdicts(run_doc())[gid][1] is True
    assert verdicts(run_doc(**change))[gid][1] is False


def test_readme_section_is_replaced_between_the_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# x\n\n## Benchmarks\n\n{readme_table.BEGIN}\nold table\n{readme_table.END}\n\n## Next\n"
    )
    out = readme_table.rewrite(readme.read_text(), "new table\n")
    assert out == f"# x\n\n## Benchmarks\n\n{readme_table.BEGIN}\nnew table\n{readme_table.END}\n\n## Next\n"


def test_readme_refuses_a_quick_run(tmp_path: Path) -> None:
    src = tmp_path / "q.json"
    src.write_text(json.dumps({"quick": True}))
    readme = tmp_path / "README.md"
    readme.write_text(f"{readme_table.BEGIN}\nold\n{readme_table.END}\n")
    assert readme_table.main([str(src), "--readme", str(readme)]) == 2
    assert "old" in readme.read_text()
