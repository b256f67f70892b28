"""``syscalls-async bench`` without a guest: parsing, figures, printing, options."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from syscalls_async import bench
from syscalls_async.bench import BenchOptions
from syscalls_async.bench.report import (
    CASES,
    OBSERVE_ONLY_MISSING,
    BenchError,
    BenchReport,
    Counts,
    HostIdle,
    Latency,
    MachineInfo,
    Sample,
    Throughput,
    events_per_second,
    figures,
    format_report,
    parse_sample,
)
from syscalls_async.cli import main, parser


def test_a_guest_line_is_parsed_in_nanoseconds() -> None:
    assert parse_sample(b"3 10 20 30 5 40 900\n") == Sample(3, 10, 20, 30, 5, 40, 900)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"usage: sa_bench time|idle COUNT",
        b"3 10 20 30 5 40",  # a field missing
        b"3 10 20 30 5 40 900 7",
        b"3 10 x 30 5 40 900",
        b"0 10 20 30 5 40 900",  # no calls
        b"3 30 20 10 5 40 900",  # percentiles out of order
        b"3 10 20 30 15 40 900",  # min above p50
    ],
)
def test_bad_guest_output_is_a_clear_error(line: bytes) -> None:
    with pytest.raises(BenchError, match="sa_bench printed"):
        parse_sample(line)


def test_latency_is_in_microseconds() -> None:
    lat = Latency.of("t", "getppid()", Sample(4, 1500, 2000, 9000, 1000, 12000, 3_000_000))
    assert (lat.p50_us, lat.p90_us, lat.p99_us, lat.min_us, lat.max_us) == (
        1.5,
        2.0,
        9.0,
        1.0,
        12.0,
    )
    assert lat.elapsed_s == 0.003


def test_events_per_second_counts_every_process_over_the_longest_loop() -> None:
    one = Sample(1000, 1, 1, 1, 1, 1, 500_000_000)
    two = Sample(1000, 1, 1, 1, 1, 1, 1_000_000_000)
    assert events_per_second([one, two]) == 2000.0


def _lat(p50: float, p99: float | None = None, call: str = "getppid()") -> Latency:
    return Latency("t", call, 100, p50, p50, p99 or p50, p50, p99 or p50, 0.1)


def _cases() -> dict[str, Latency]:
    access = 'access("/x", F_OK)'
    return {
        "a": _lat(2.0),
        "b": _lat(2.0),
        "r": _lat(10.0),
        "p": _lat(30.0),
        "c": _lat(50.0, 1000.0),
        "c_access": _lat(60.0, call=access),
        "d": _lat(180.0, call=access),
        "e": _lat(100.0),
        "f": _lat(5.0),
        "h": _lat(4000.0),
    }


def _throughput() -> dict[str, Throughput]:
    return {
        "g": Throughput("observe", "getppid()", False, reason=OBSERVE_ONLY_MISSING),
        "g_batch": Throughput(
            "observe batch",
            "getppid()",
            True,
            90000.0,
            120000.0,
            0,
            made_one_process=95000.0,
            made_two_processes=125000.0,
        ),
        "g0": Throughput("blocking", "getppid()", True, 4000.0, 6000.0),
    }


def test_figures_are_issue_7s_ratios_reported_with_their_targets() -> None:
    figs = {f.name: f for f in figures(_cases(), _throughput(), HostIdle(2.0, 0.05))}
    assert figs["(b)/(a) p50"].value == 1.0 and figs["(b)/(a) p50"].met is True
    assert figs["(c)/(r) p50"].value == 5.0 and figs["(c)/(r) p50"].met is False
    assert figs["(c) p99/p50"].value == 20.0
    assert figs["(d)/(c) p50"].value == 3.6 and "getppid()" in figs["(d)/(c) p50"].note
    assert figs["(d)/(c_access) p50"].value == 3.0
    assert figs["(f)/(a) p50"].value == 2.5
    assert figs["(h) idle host CPU, % of one core"].value == 5.0
    assert figs["(h) first call after idle p50, µs"].value == 4000.0
    observed = figs["(g) observe-only events/s, 2 processes"]
    assert (observed.value, observed.met, observed.target) == (None, None, ">= 200000")
    assert observed.note == OBSERVE_ONLY_MISSING
    batch = figs["(g_batch) observe-only batch handler events/s, 2 processes"]
    assert (batch.value, batch.met) == (120000.0, False)
    assert "the guest made 125,000/s" in batch.note


def test_a_zero_denominator_gives_no_ratio_rather_than_an_error() -> None:
    cases = _cases() | {"a": _lat(0.0)}
    figs = {f.name: f for f in figures(cases, _throughput(), HostIdle(2.0, 0.0))}
    assert figs["(b)/(a) p50"].value is None and figs["(b)/(a) p50"].met is None


def _report() -> BenchReport:
    cases = _cases()
    idle = HostIdle(2.0, 0.05)
    return BenchReport(
        started="2026-11-26T00:00:00+00:00",
        duration_s=42.0,
        machine=MachineInfo("6.1.0-56-amd64", 2, 1024, "tcg", 2, 0.5),
        counts=Counts(20000, 5000, 10, 300, 2.0),
        cases=cases,
        throughput=_throughput(),
        idle=idle,
        figures=figures(cases, _throughput(), idle),
    )


def test_the_text_report_has_every_case_throughput_and_target() -> None:
    text = format_report(_report())
    for key in CASES:
        assert f"({key})" in text
    assert "(g) observe: not available" in text
    assert "(g0) blocking, getppid(): 1 process 4,000, 2 processes 6,000" in text
    assert "(g_batch) observe batch, getppid(): 1 process 90,000, 2 processes 120,000" in text
    assert "the guest made 1 process 95,000, 2 processes 125,000 per second" in text
    assert "5.0% of one core" in text
    assert "(c)/(r) p50" in text and "NOT met" in text


def test_what_woke_the_poller_during_h_is_reported() -> None:
    assert "doorbell" not in format_report(_report())  # no bell: no line
    bell = {"sleeps": 30, "bell_wakeups": 20, "timer_wakeups": 9, "fallback_wakeups": 0}
    report = msgspec.structs.replace(_report(), idle=HostIdle(2.0, 0.002, bell=bell))
    text = format_report(report)
    assert "slept on the doorbell 30 times: woken by the bell 20, by its liveness tick 9" in text
    assert "lost wake-ups found by the fallback 0" in text


def test_unanswered_hooked_calls_are_called_out() -> None:
    quiet = msgspec.structs.replace(_report(), guest_counters={"events": 9, "verdicts": 9})
    assert "WARNING" not in format_report(quiet)
    assert "9 events, 9 verdicts" in format_report(quiet)
    late = msgspec.structs.replace(quiet, guest_counters={"events": 9, "deadline_expired": 2})
    assert "WARNING: hooked calls went unanswered (deadline_expired 2)" in format_report(late)


def test_the_json_report_round_trips() -> None:
    report = _report()
    data = msgspec.json.encode(report)
    assert msgspec.json.decode(data, type=BenchReport) == report
    assert msgspec.json.decode(data)["throughput"]["g"]["two_processes"] is None


def test_quick_sets_only_what_the_command_line_does_not() -> None:
    args = parser().parse_args(["bench", "--quick", "--count", "500"])
    options = bench.options_from(args)
    quick = BenchOptions.quick()
    assert options.count == 500
    assert options.hooked_count == quick.hooked_count
    assert options.idle_seconds == quick.idle_seconds
    assert bench.options_from(parser().parse_args(["bench"])).count == BenchOptions().count


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--count", "0"],
        ["bench", "--hooked-count", "-3"],
        ["bench", "--idle-count", "many"],
        ["bench", "--idle-seconds", "0"],
    ],
)
def test_bad_counts_are_refused_by_the_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(argv)
    assert exc.value.code == 2
    assert "bench: error: argument" in capsys.readouterr().err


def test_options_refuse_nonsense_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="count must be at least 1"):
        BenchOptions(count=0)


def test_a_json_file_in_a_missing_folder_fails_before_booting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_boot(*args: object, **kwargs: object) -> None:
        raise AssertionError("the guest must not boot")

    monkeypatch.setattr(bench, "run_bench", no_boot)
    status = main(["bench", "--quick", "--json", str(tmp_path / "no" / "out.json")])
    assert status == 1
    assert "--json" in capsys.readouterr().err
