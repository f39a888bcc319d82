"""The benchmark harness: the crash-only baseline core, matrix files, presets, targets, and a
tiny end-to-end run that writes results.json, the markdown table and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from btob import BacklogFull, ConfigError, Member, MsgId, PayloadTooLarge, Settings
from btob.bench import harness
from btob.bench.baseline import SEQUENCER, CrashOnlySequencer
from btob.bench.matrix import RunSpec, full_preset, load_matrix, quick_preset
from btob.core.wire import Send, decode_frame
from btob.crypto import KeyRegistry, SigningKey

# -- the baseline core --------------------------------------------------------------------


def _run_baseline(n: int, submits: list[tuple[int, bytes]], settings: Settings,
                  ) -> list[list[MsgId]]:
    """Drive n baseline cores over a perfect in-order network; every member's deliveries."""
    cores = [CrashOnlySequencer(member=i, n=n, settings=settings) for i in range(n)]
    delivered: list[list[MsgId]] = [[] for _ in range(n)]
    for member, payload in submits:
        cores[member].submit(payload, 0.0)
    moved = True
    while moved:
        moved = False
        for core in cores:
            frames, deliveries = core.take_outputs()
            delivered[core.member] += [d.msg_id for d in deliveries]
            for out in frames:
                cores[out.destination].receive(out.frame, 0.0)
                moved = True
    return delivered


def test_baseline_delivers_one_order_everywhere_fifo_per_origin() -> None:
    submits = [(m, b"%d-%d" % (m, k)) for k in range(40) for m in (0, 1, 3)]
    delivered = _run_baseline(4, submits, Settings(batch_payloads_max=7,
                                                   own_batches_in_flight_max=2))
    assert all(d == delivered[0] for d in delivered)
    assert sorted(delivered[0]) == sorted(MsgId(m, k) for k in range(40) for m in (0, 1, 3))
    for origin in (0, 1, 3):
        counters = [i.counter for i in delivered[0] if i.origin == origin]
        assert counters == sorted(counters)


def test_baseline_sends_no_signatures_and_n_messages_per_batch() -> None:
    core = CrashOnlySequencer(member=2, n=4)
    core.submit(b"x" * 10, 0.0)
    frames, _ = core.take_outputs()
    assert [f.destination for f in frames] == [SEQUENCER]  # UB: only to the sequencer
    stats = core.statistics()
    assert stats.signatures_made == stats.signatures_verified == 0
    seq = CrashOnlySequencer(member=SEQUENCER, n=4)
    seq.receive(frames[0].frame, 0.0)
    out, deliveries = seq.take_outputs()
    assert sorted(f.destination for f in out) == [1, 2, 3]
    assert [d.msg_id for d in deliveries] == [MsgId(2, 0)]


def test_baseline_batches_like_btob_and_refuses_like_btob() -> None:
    settings = Settings(batch_payloads_max=4, own_batches_in_flight_max=1,
                        batch_delay_s=0.01, pending_payloads_max=10)
    core = CrashOnlySequencer(member=1, n=4, settings=settings)
    core.submit(b"a", 0.0)
    assert core.take_outputs()[0] == []  # waits for company up to the delay
    core.tick(0.011)
    assert len(core.take_outputs()[0]) == 1  # the delay passed: the batch leaves
    for k in range(9):
        core.submit(b"b%d" % k, 0.02)
    assert core.take_outputs()[0] == []  # one batch in flight already
    with pytest.raises(BacklogFull):
        for _ in range(5):
            core.submit(b"c", 0.02)
    with pytest.raises(PayloadTooLarge):
        core.submit(b"x" * (settings.payload_bytes_max + 1), 0.0)


def test_member_batch_delay_waits_for_company_but_not_for_a_full_batch() -> None:
    keys = [SigningKey.from_seed(bytes([i]) * 32) for i in range(4)]
    registry = KeyRegistry(tuple(k.public_key() for k in keys))

    def member(settings: Settings) -> Member:
        return Member(member=1, registry=registry, signing_key=keys[1], cluster_id=b"t",
                      f=1, settings=settings)
    def sends(m: Member) -> int:
        frames, _ = m.take_outputs()
        return sum(isinstance(decode_frame(f.frame).parse().message, Send) for f in frames)
    delayed = member(Settings(batch_delay_s=0.05, batch_payloads_max=3))
    delayed.submit(b"p", 1.0)
    assert sends(delayed) == 0
    delayed.tick(1.049)
    assert sends(delayed) == 0
    delayed.tick(1.05)
    assert sends(delayed) == 3  # the SEND to the three others
    full = member(Settings(batch_delay_s=10.0, batch_payloads_max=3))
    for k in range(3):
        full.submit(b"q%d" % k, 0.0)
    assert sends(full) == 3
    with pytest.raises(ConfigError):
        Settings(batch_delay_s=-1)


# -- matrix files and presets -------------------------------------------------------------


def test_matrix_expands_lists_into_the_cartesian_product(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[defaults]\npayloads = 500\n\n[[run]]\nn = [4, 7]\n'
                    'variant = ["bb", "ub"]\nmix = ["none", "crash-sequencer"]\n\n'
                    '[[run]]\nname = "inline"\nmode = "sim"\nfaults = ["2=omission:p=0.2"]\n'
                    'net = "delay=0.001-0.002"\n')
    runs = load_matrix(path)
    assert len(runs) == 9
    assert {(r.n, r.variant, r.mix) for r in runs[:8]} == {
        (n, v, m) for n in (4, 7) for v in ("bb", "ub") for m in (None, "crash-sequencer")}
    assert all(r.payloads == 500 for r in runs)
    assert runs[8].label == "inline" and runs[8].fault_specs() == ("2=omission:p=0.2",)


@pytest.mark.parametrize(("text", "message"), [
    ("[[run]]\nspeed = 3\n", "unknown field"),
    ("[[run]]\nvariant = \"fast\"\n", "variant"),
    ("[[run]]\nmix = \"no-such-mix\"\n", "unknown fault mix"),
    ("[[run]]\nvariant = \"baseline\"\nmix = \"crash-sequencer\"\n", "fault-free only"),
    ("[[run]]\nmix = \"twins\"\nfaults = [\"0=crash\"]\n", "either mix or faults"),
    ("[[run]]\nn = 4\nfaults = [\"0=equivocate\", \"1=equivocate\"]\n", "Byzantine"),
    ("[[run]]\nn = [4, 4]\n", "named twice"),
    ("[[run]]\nn = []\n", "empty list"),
    ("[defaults]\nn = 4\n", r"at least one \[\[run\]\]"),
    ("[runs]\nn = 4\n", "unknown table"),
    ("[[run]\n", "matrix file"),
])
def test_bad_matrix_files_are_refused_with_the_reason(tmp_path: Path, text: str,
                                                      message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_matrix(path)


def test_missing_matrix_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_matrix(tmp_path / "nope.toml")
    assert harness.main(["--matrix", str(tmp_path / "nope.toml")]) == 2


def test_presets_cover_what_the_issue_asks_for() -> None:
    full = full_preset()
    tcp = [r for r in full if r.mode == "tcp"]
    assert {r.n for r in tcp} == {4, 7, 10, 16}
    assert {r.n for r in full if r.mode == "sim"} >= {4, 7, 10, 16}
    assert {r.variant for r in tcp} == {"bb", "ub", "uub", "moving", "baseline"}
    assert {r.brb for r in tcp} == {"bracha", "echo"}
    assert {r.payload_size for r in tcp} >= {100, 1000}
    assert len({r.batch_size for r in tcp}) >= 3 and any(r.batch_delay_ms for r in tcp)
    mixes = {r.mix for r in tcp}
    assert {None, "crash-sequencer", "equivocating-sequencer", "omission-member",
            "lossy-jittery", "twins", "f-faulty"} <= mixes
    assert len({r.label for r in full}) == len(full)
    quick = quick_preset()
    assert any(r.variant == "baseline" for r in quick) and any(r.mode == "sim" for r in quick)


def test_plan_pairs_every_tcp_run_with_a_baseline() -> None:
    runs = [RunSpec(n=7, payloads=100), RunSpec(n=7, payloads=100, mix="crash-sequencer"),
            RunSpec(mode="sim", payloads=100)]
    planned = harness.plan(runs)
    assert [r.label for r in planned] == ["tcp-baseline-n7", "tcp-bb-bracha-n7",
                                          "tcp-bb-bracha-n7-crash-sequencer",
                                          "sim-bb-bracha-n4"]


def _row(**fields: object) -> dict[str, object]:
    row: dict[str, object] = {"mode": "tcp", "variant": "bb", "brb": "bracha", "n": 4,
                              "payload_size": 100, "batch_size": 1024, "batch_delay_ms": 0.0,
                              "mix": None, "rate": 0.0, "ok": True,
                              "throughput_pps": 4000.0, "latency_ms": {"p50": 10.0},
                              "sig_verify_per_payload": 0.15,
                              "throughput_after_recovery_pps": None}
    row.update(fields)
    return row


def test_targets_are_judged_against_the_rows_that_measure_them() -> None:
    rows = [_row(variant="baseline", brb=None, throughput_pps=10000.0),
            _row(),
            _row(variant="baseline", brb=None, rate=100.0, latency_ms={"p50": 1.0}),
            _row(rate=100.0, latency_ms={"p50": 5.0}),
            _row(mix="equivocating-sequencer", throughput_after_recovery_pps=2000.0)]
    targets = {t["target"].split(" (")[0]: t for t in harness.evaluate_targets(rows)}
    assert targets["throughput / baseline"]["met"] is False  # 0.4 < 0.5
    assert targets["signature verifications per payload, cluster-wide"]["met"] is True
    assert targets["throughput, payloads/s"]["met"] is True
    assert targets["p50 latency / baseline at low load"]["met"] is False  # 5x
    assert targets["throughput after replacing a Byzantine sequencer / fault-free"][
        "met"] is False  # 0.5
    assert harness.evaluate_targets([]) == []


# -- end to end ---------------------------------------------------------------------------


def test_a_tiny_matrix_runs_end_to_end(tmp_path: Path) -> None:
    matrix = tmp_path / "tiny.toml"
    matrix.write_text('[defaults]\npayloads = 240\n\n[[run]]\nmode = "tcp"\n\n'
                      '[[run]]\nmode = "sim"\nn = [4, 7]\nrate = 500.0\n')
    out = tmp_path / "out"
    assert harness.main(["--matrix", str(matrix), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    names = [r["name"] for r in results["runs"]]
    assert names == ["tcp-baseline-n4", "tcp-bb-bracha-n4", "sim-bb-bracha-n4-500pps",
                     "sim-bb-bracha-n7-500pps"]
    for run in results["runs"]:
        assert run["ok"], run
        for key in ("name", "mode", "variant", "n", "f", "faults", "payload_size",
                    "throughput_pps", "latency_ms", "sig_verify_per_payload",
                    "msgs_per_payload", "bytes_per_payload"):
            assert key in run
        assert set(run["latency_ms"]) == {"p50", "p90", "p99"}
        assert run["faults"] == []
    btob_row, base_row = results["runs"][1], results["runs"][0]
    assert btob_row["sig_verify_per_payload"] > 0 and base_row["sig_verify_per_payload"] == 0
    assert btob_row["baseline_ratio"]["throughput"] == pytest.approx(
        btob_row["throughput_pps"] / base_row["throughput_pps"])
    assert results["baseline"]["throughput_pps"] == base_row["throughput_pps"]
    assert set(results["baseline"]["latency_ms"]) == {"p50", "p90", "p99"}
    sims = results["runs"][2:]
    assert sims[1]["msgs_per_payload"] > sims[0]["msgs_per_payload"]  # n=7 costs more
    assert "tcp-bb-bracha-n4" in (out / "results.md").read_text()
    for png in ("throughput_vs_n.png", "latency_cdf.png", "throughput_by_faults.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")


def test_micro_benchmarks_still_run_through_the_harness(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert harness.main(["sim", "--messages", "40", "--repeat", "1"]) == 0
    assert "deliveries/cpu-s" in capsys.readouterr().out


def test_a_tcp_run_with_a_crashed_sequencer_measures_its_recovery() -> None:
    spec = RunSpec(payloads=400, mix="crash-sequencer", view_change_timeout_s=0.3)
    row = harness.run_tcp(spec)
    assert row["ok"], row["error"]
    assert row["faults"] == ["0=crash:at=0.01"]
    assert row["view_changes"] >= 1
    # the crashed member's payloads are not waited for; the others' all arrive
    assert row["payloads"] == 3 * (400 // 4)
    assert 0.3 <= row["recovery_s"] < 5.0  # at least the timeout, then the new view's work
    assert row["throughput_after_recovery_pps"] > 0


def test_a_repeated_run_reports_the_median_and_every_sample(
        monkeypatch: pytest.MonkeyPatch) -> None:
    samples = iter([300.0, 100.0, 200.0])

    def fake(spec: RunSpec) -> dict[str, object]:
        return {"name": spec.label, "ok": True, "throughput_pps": next(samples)}
    monkeypatch.setattr(harness, "run_sim", fake)
    row = harness._run_repeated(RunSpec(mode="sim", payloads=100, repeat=3))
    assert row["throughput_pps"] == 200.0 and row["repeats"] == [300.0, 100.0, 200.0]
    with pytest.raises(ConfigError):
        RunSpec(repeat=0)


def test_the_baseline_sequencer_batches_its_own_payloads_between_outside_inputs() -> None:
    # Regression: it cut one batch per own payload (nothing acknowledges its own batches),
    # which overflowed the transport's send queues and hung a 100,000-payload run.
    settings = Settings(own_batches_in_flight_max=2)
    seq = CrashOnlySequencer(member=SEQUENCER, n=4, settings=settings)
    for k in range(100):
        seq.submit(b"p%d" % k, 0.0)
    frames, deliveries = seq.take_outputs()
    assert len(frames) <= 2 * 3  # two batches to three peers
    seq.tick(0.05)
    frames, more = seq.take_outputs()
    assert len(deliveries) + len(more) == 100  # the rest left together on the next input
