"""The benchmark report: markdown rendering and the PNG plots, from synthetic results."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from btob.bench import report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ("throughput_vs_n.png", "latency_cdf.png", "throughput_by_faults.png")
LONG_ERROR = "worker 2 timed out waiting for deliveries " + "x" * 100 + "\nTraceback: ..."


def _cdf(scale: float) -> list[list[float]]:
    return [[scale * (1 + i), i / 10] for i in range(11)]


def _run(name: str, **overrides: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "name": name, "mode": "tcp", "variant": "bb", "brb": "bracha", "n": 4, "f": 1,
        "mix": None, "faults": [], "payload_size": 100, "batch_size": 1024,
        "batch_delay_ms": 0.0, "payloads": 3000, "rate": 0.0,
        "throughput_pps": 10000.0, "throughput_after_recovery_pps": None,
        "latency_ms": {"p50": 70.1, "p90": 90.0, "p99": 110.0},
        "latency_cdf": _cdf(1.0), "sig_made_per_payload": 0.05,
        "sig_verify_per_payload": 0.16, "msgs_per_payload": 0.6, "bytes_per_payload": 370.0,
        "cpu_s_per_payload": 0.0002, "peak_rss_mib": 41.0, "recovery_s": None,
        "view_changes": 0, "baseline_ratio": {"throughput": 0.6, "latency_p50": 2.1},
        "ok": True, "error": None,
    }
    run.update(overrides)
    return run


def _results() -> dict[str, Any]:
    runs = [
        _run("tcp-bb-bracha-n4"),
        _run("tcp-bb-bracha-n7", n=7, f=2, throughput_pps=7654.4,
             latency_ms={"p50": 80.0, "p90": math.nan, "p99": None}, bytes_per_payload=None,
             baseline_ratio=None),
        _run("tcp-baseline-n4", variant="baseline", brb=None, throughput_pps=16666.7,
             baseline_ratio={"throughput": 1.0, "latency_p50": 1.0}),
        _run("tcp-baseline-n7", variant="baseline", brb=None, n=7, f=2,
             throughput_pps=15000.0),
        _run("tcp-bb-bracha-n4-equivocate", mix="byzantine-sequencer-equivocate",
             faults=["0=equivocate"], throughput_pps=5200.0,
             throughput_after_recovery_pps=9100.0, recovery_s=1.1, view_changes=1),
        _run("tcp-bb-bracha-n4-paced", rate=500.0, throughput_pps=500.0),
        _run("tcp-ub-signed-echo-n4-broken", variant="ub", brb="signed-echo",
             throughput_pps=math.nan, ok=False, error=LONG_ERROR),
        _run("sim-bb-bracha-n4", mode="sim", throughput_pps=math.nan, latency_cdf=[]),
    ]
    return {
        "preset": "quick", "started": "2026-11-26T09:00:00Z", "wall_s": 123.4,
        "machine": {"cpus": 2, "python": "3.11.2", "platform": "Linux-x86_64"},
        "baseline": {"throughput_pps": 16666.7,
                     "latency_ms": {"p50": 30.0, "p90": 40.0, "p99": 50.0},
                     "low_load_latency_ms": {"p50": 1.5, "p90": 2.5, "p99": 3.5}},
        "targets": [
            {"target": "throughput >= 0.5 x baseline", "measured": "0.62",
             "required": ">= 0.5", "met": True},
            {"target": "p99 latency <= 100 ms", "measured": "110.0",
             "required": "<= 100", "met": False},
        ],
        "runs": runs,
    }


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def _rows(markdown: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the table whose first column is ``first_header``, as header -> cell."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    headers = _cells(lines[start])
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        assert len(cells) == len(headers), line
        rows.append(dict(zip(headers, cells, strict=True)))
    return rows


@pytest.fixture(scope="module")
def markdown() -> str:
    return report.markdown_table(_results())


@pytest.fixture(scope="module")
def run_rows(markdown: str) -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in _rows(markdown, "name")}


def test_markdown_has_one_row_per_run_in_order(markdown: str) -> None:
    assert markdown.startswith("# ")
    names = [row["name"] for row in _rows(markdown, "name")]
    assert names == [run["name"] for run in _results()["runs"]]


def test_markdown_formats_measurements(run_rows: dict[str, dict[str, str]]) -> None:
    row = run_rows["tcp-bb-bracha-n4"]
    assert row["throughput (payloads/s)"] == "10,000"
    assert row["x baseline"] == "0.60"
    assert (row["p50 ms"], row["p90 ms"], row["p99 ms"]) == ("70.1", "90.0", "110.0")
    assert row["verif/payload"] == "0.16"
    assert row["msgs/payload"] == "0.60"
    assert row["bytes/payload"] == "370"
    assert row["CPU ms/payload"] == "0.200"
    assert row["peak RSS MiB"] == "41.0"
    assert row["recovery s"] == "-"
    assert (row["faults"], row["n"], row["f"], row["ok"]) == ("none", "4", "1", "yes")
    assert run_rows["tcp-bb-bracha-n7"]["throughput (payloads/s)"] == "7,654"
    assert run_rows["tcp-baseline-n4"]["throughput (payloads/s)"] == "16,667"
    assert run_rows["tcp-baseline-n4"]["brb"] == "-"
    faulty = run_rows["tcp-bb-bracha-n4-equivocate"]
    assert faulty["faults"] == "byzantine-sequencer-equivocate"
    assert faulty["recovery s"] == "1.10"


def test_markdown_renders_nan_and_none_as_dash(run_rows: dict[str, dict[str, str]]) -> None:
    row = run_rows["tcp-bb-bracha-n7"]
    assert row["p50 ms"] == "80.0"
    assert row["p90 ms"] == "-"  # NaN
    assert row["p99 ms"] == "-"  # None
    assert row["bytes/payload"] == "-"
    assert row["x baseline"] == "-"
    assert run_rows["sim-bb-bracha-n4"]["throughput (payloads/s)"] == "-"
    assert "nan" not in "".join(row.values()).lower()


def test_markdown_shows_error_instead_of_metrics(run_rows: dict[str, dict[str, str]]) -> None:
    row = run_rows["tcp-ub-signed-echo-n4-broken"]
    assert row["ok"].startswith("worker 2 timed out waiting for deliveries")
    assert len(row["ok"]) <= 80
    assert "Traceback" not in row["ok"]
    assert row["throughput (payloads/s)"] == "-"
    # the other metrics were real numbers in the input but belong to a failed run
    assert row["p50 ms"] == row["verif/payload"] == row["peak RSS MiB"] == "-"
    assert (row["variant"], row["brb"], row["n"]) == ("ub", "signed-echo", "4")


def test_markdown_baseline_and_targets(markdown: str) -> None:
    baseline = markdown[markdown.index("## Baseline"):markdown.index("## Targets")]
    assert "16,667 payloads/s" in baseline
    assert "30.0 / 40.0 / 50.0 ms" in baseline
    assert "1.5 / 2.5 / 3.5 ms" in baseline
    targets = {row["target"]: row for row in _rows(markdown, "target")}
    assert targets["throughput >= 0.5 x baseline"]["met"] == "yes"
    unmet = targets["p99 latency <= 100 ms"]
    assert (unmet["measured"], unmet["required"], unmet["met"]) == ("110.0", "<= 100", "NO")


def test_markdown_without_runs_baseline_or_targets() -> None:
    text = report.markdown_table({"runs": [], "baseline": None})
    assert text.startswith("# ")
    assert "## Baseline" not in text
    assert "## Targets" not in text


def test_markdown_escapes_pipes() -> None:
    text = report.markdown_table({"runs": [_run("a|b", error="bad | worse")]})
    row = _rows(text, "name")[0]
    assert row["name"] == "a\\|b"
    assert row["ok"] == "bad \\| worse"


def test_scaling_lines_keep_fault_free_flat_out_runs() -> None:
    lines = report._scaling_lines(_results()["runs"], "tcp")
    assert lines == {
        "bb / bracha": {4.0: 10000.0, 7.0: 7654.4},
        report.BASELINE_LABEL: {4.0: 16666.7, 7.0: 15000.0},
    }


def test_fault_bars_compare_only_faults_under_the_default_protocol() -> None:
    bars = report._fault_runs(_results()["runs"], "tcp")
    assert report._fault_labels(bars) == ["none", "byzantine-sequencer-equivocate"]


def test_fault_labels_fall_back_to_names_when_ambiguous() -> None:
    runs = [run for run in _results()["runs"] if run.get("mode") == "tcp"
            and run.get("n") == 4 and not run.get("error")]
    assert report._fault_labels(runs) == [
        "tcp-bb-bracha-n4", "tcp-baseline-n4", "byzantine-sequencer-equivocate",
        "tcp-bb-bracha-n4-paced",
    ]


def test_cdf_curves_take_the_first_twelve_usable_runs() -> None:
    runs = [_run("empty", latency_cdf=[]), _run("zero", latency_cdf=[[0.0, 1.0]])]
    runs += [_run(f"r{i}", latency_cdf=_cdf(i + 1.0)) for i in range(15)]
    runs[5]["error"] = "boom"
    curves = report._cdf_curves(runs)
    assert [label for label, _, _ in curves] == [
        "r0", "r1", "r2", "r3 (failed)", *(f"r{i}" for i in range(4, 12))
    ]
    _, xs, ys = curves[0]
    assert xs == [1.0 + i for i in range(11)]
    assert ys[0] == 0.0 and ys[-1] == 1.0


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > len(PNG_MAGIC)


def test_write_reports_writes_markdown_and_all_plots(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    out = tmp_path / "out"
    written = report.write_reports(_results(), out)
    assert written == [out / "results.md", *(out / name for name in PLOTS)]
    assert "tcp-bb-bracha-n4-equivocate" in (out / "results.md").read_text(encoding="utf-8")
    for path in written[1:]:
        _assert_png(path)
    assert plt.get_fignums() == []


def test_write_plots_without_runs_writes_nothing(tmp_path: Path) -> None:
    assert report.write_plots({"runs": []}, tmp_path) == []
    assert report.write_plots({}, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_write_plots_falls_back_to_sim_runs(tmp_path: Path) -> None:
    runs = [
        _run("sim-bb-n4", mode="sim", latency_cdf=None),
        _run("sim-bb-n7", mode="sim", n=7, f=2, throughput_pps=8000.0, latency_cdf=[]),
    ]
    written = report.write_plots({"runs": runs}, tmp_path)
    assert written == [tmp_path / "throughput_vs_n.png", tmp_path / "throughput_by_faults.png"]
    for path in written:
        _assert_png(path)


def test_report_import_does_not_load_matplotlib() -> None:
    code = "import sys, btob.bench.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_the_report_knows_btobs_default_batch_size() -> None:
    from btob import Settings

    assert Settings().batch_payloads_max == report.DEFAULT_BATCH
