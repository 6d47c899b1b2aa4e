"""The benchmark's scenarios: each returns its figures beside their limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench import peers
from bench.world import (
    World,
    load,
    measure,
    new_topics,
    processor,
    rates,
    samples,
    simulator,
)

Figures = dict[str, Any]
_LATENCY = ["--latency-ms", "50", "--latency-jitter-ms", "5"]
_NO_LATENCY = ["--latency-ms", "0", "--latency-jitter-ms", "0"]
# The adaptive limit finds the API's limit in its first seconds; goodput is
# measured after that, over the window.
_WARM_UP_S = 10.0


def littles_law(world: World) -> Figures:
    """C = 64 jobs in flight at L = 50 ms: jobs per second against C / L."""
    in_flight, latency_s = 64, 0.05
    jobs = world.count(20_000, 2_000)
    with simulator(_LATENCY) as sim, processor(world, sim, jobs, in_flight):
        sim.first_job()
        started, first = time.monotonic(), sim.stats()
        deadline = started + 300
        while (last := sim.stats())["accepted"] < jobs and time.monotonic() < deadline:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    limit = in_flight / latency_s
    rate = jobs / elapsed

    # Where a shortfall comes from, by Little's law at the API's side: fewer
    # submissions held than C, or each held longer than L.
    held_s = last["in_flight_s"] - first["in_flight_s"]
    answered = (last["submissions"] - last["in_flight"]) - (
        first["submissions"] - first["in_flight"]
    )
    return {
        "jobs": jobs,
        "limit_jobs_per_s": limit,
        "jobs_per_s": round(rate, 1),
        "ratio": round(rate / limit, 3),
        "api_mean_in_flight": round(held_s / elapsed, 1),
        "api_mean_latency_ms": round(1000 * held_s / max(1, answered), 1),
        "target": "ratio >= 0.95",
    }


def ceiling(world: World) -> Figures:
    """API latency 0: the processor against the bare Kafka pipe and HTTP client."""
    seconds = world.seconds(15.0)
    figures: Figures = {}
    for in_flight in (16, 64, 256):
        rate, cpu_us = _ceiling_run(world, in_flight, seconds)
        figures[f"jobs_per_s_c{in_flight}"] = round(rate, 1)
        figures[f"cpu_us_per_job_c{in_flight}"] = round(cpu_us)

    topics = new_topics(world.bootstrap)
    pipe_jobs = world.count(100_000, 5_000)
    load(world.bootstrap, topics.requests, pipe_jobs)
    pipe = peers.bare_pipe(world.bootstrap, topics, pipe_jobs)
    with simulator(_NO_LATENCY) as sim:
        http = peers.bare_http(sim.url, 64, seconds)

    ours = figures["jobs_per_s_c64"]
    figures |= {
        "bare_kafka_pipe_jobs_per_s": round(pipe, 1),
        "bare_http_client_jobs_per_s_c64": round(http, 1),
        "ratio_to_kafka_pipe": round(ours / pipe, 3),
        "ratio_to_http_client": round(ours / http, 3),
        "c256_over_c16": round(
            figures["jobs_per_s_c256"] / figures["jobs_per_s_c16"], 3
        ),
        "target": "jobs_per_s_c64 >= 2500, c256_over_c16 >= 1",
    }
    return figures


def _ceiling_run(
    world: World, in_flight: int, seconds: float, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Jobs per second and CPU microseconds per job at latency 0."""
    jobs = int(4_000 * (seconds + 8))
    with (
        simulator(_NO_LATENCY) as sim,
        processor(world, sim, jobs, in_flight, env) as run,
    ):
        window = measure(sim, run, seconds, warm_up=2.0)
    return window.jobs_per_s, window.cpu_us_per_job


def tracing_cost(world: World) -> Figures:
    """The ceiling with traces and metrics exported by OTLP, against both off.

    Twice: with one trace in ten kept (head sampling, what a service doing
    thousands of jobs a second runs with) and with every trace kept (the
    SDK's default sampler).
    """
    seconds = world.seconds(15.0)
    off, off_cpu = _ceiling_run(world, 64, seconds)
    figures: Figures = {
        "jobs_per_s_off": round(off, 1),
        "cpu_us_per_job_off": round(off_cpu),
    }
    samplers = {
        "sampled_10pct": {
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
        "every_trace": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    }
    with peers.otlp_sink() as endpoint:
        for name, sampler in samplers.items():
            telemetry = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "prometheus,otlp",
                "OTEL_METRIC_EXPORT_INTERVAL": "5000",
                **sampler,
            }
            on, on_cpu = _ceiling_run(world, 64, seconds, telemetry)
            figures[f"jobs_per_s_{name}"] = round(on, 1)
            figures[f"cpu_us_per_job_{name}"] = round(on_cpu)
            figures[f"drop_{name}"] = round(1 - on / off, 3)
    figures["target"] = "drop <= 0.15"
    return figures


def rate_limit(world: World) -> Figures:
    """A server rate limit R = 200/s at 50 ms, the cap at 64."""
    rate, seconds = 200.0, world.seconds(60.0)
    return _goodput(world, ["--rate-limit", str(rate)], rate, seconds)


def concurrency_cap(world: World) -> Figures:
    """A server concurrency cap K = 16 at 50 ms."""
    cap, latency_s, seconds = 16, 0.05, world.seconds(60.0)
    return _goodput(world, ["--max-concurrency", str(cap)], cap / latency_s, seconds)


def _goodput(world: World, limits: list[str], limit: float, seconds: float) -> Figures:
    warm_up = world.seconds(_WARM_UP_S, 2.0)
    jobs = int(limit * (seconds + warm_up + 30))
    with (
        simulator([*limits, *_LATENCY]) as sim,
        processor(world, sim, jobs, 64) as run,
    ):
        window = measure(sim, run, seconds, warm_up)
    return {
        "limit_jobs_per_s": limit,
        "goodput_jobs_per_s": round(window.jobs_per_s, 1),
        "goodput_ratio": round(window.jobs_per_s / limit, 3),
        "share_429": round(window.share_429, 4),
        "measured_s": round(window.seconds, 1),
        "warm_up_s": warm_up,
        "target": "goodput_ratio >= 0.95, share_429 <= 0.05",
    }


def rate_halving(world: World) -> Figures:
    """R = 200/s, halved mid-run: seconds until the 429 share is under 5% again."""
    before_s = world.seconds(20.0, 4.0)
    after_s = world.seconds(30.0, 6.0)
    jobs = int(200 * (before_s + after_s + 30))
    with (
        simulator(["--rate-limit", "200", *_LATENCY]) as sim,
        processor(world, sim, jobs, 64),
    ):
        sim.first_job()
        time.sleep(before_s)
        sim.configure(rate_limit_per_s=100.0)
        series = samples(sim, after_s)
    shares = [(t, share) for t, _, share in rates(series)]
    settled = _settled_after(shares, 0.05)
    return {
        "limit_before_jobs_per_s": 200.0,
        "limit_after_jobs_per_s": 100.0,
        "peak_share_429_after": round(max((s for _, s in shares), default=0.0), 3),
        "seconds_to_share_429_under_5pct": settled,
        "target": "seconds_to_share_429_under_5pct <= 10",
    }


def _settled_after(shares: list[tuple[float, float]], bound: float) -> float | None:
    """The first time from which every later share stays under ``bound``."""
    for i, (t, _) in enumerate(shares):
        if all(share < bound for _, share in shares[i:]):
            return round(t, 1)
    return None


def outage(world: World) -> Figures:
    """A 30 s outage mid-run: dead letters it causes and the recovery time."""
    before_s = world.seconds(10.0, 4.0)
    outage_s = world.seconds(30.0, 4.0)
    after_s = world.seconds(15.0, 6.0)
    jobs = 64 * 20 * int(before_s + outage_s + after_s + 15)
    with simulator(_LATENCY) as sim, processor(world, sim, jobs, 64) as run:
        sim.first_job()
        series = samples(sim, before_s)
        sim.outage(outage_s)
        series += samples(sim, outage_s + after_s)
        dead_letters = run.dead_letters()
    flowing = [(t, rate) for t, rate, _ in rates(series)]
    before = [rate for t, rate in flowing if 2.0 <= t <= before_s]
    full = sum(before) / max(1, len(before))
    end = before_s + outage_s
    recovered = next(
        (t - end for t, rate in flowing if t > end and rate >= 0.9 * full), None
    )
    return {
        "throughput_before_jobs_per_s": round(full, 1),
        "dead_letters": dead_letters,
        "seconds_to_full_throughput": None
        if recovered is None
        else round(recovered, 1),
        "target": "dead_letters == 0, seconds_to_full_throughput <= 5",
    }


def memory(world: World) -> Figures:
    """A backlog with the API stalled, then slowly drained: resident memory."""
    backlog = world.count(1_000_000, 20_000)
    stalled_s = world.seconds(20.0, 4.0)
    drain_s = world.seconds(60.0, 6.0)
    with (
        simulator(_LATENCY) as sim,
        processor(world, sim, backlog, 64) as run,
    ):
        sim.outage(stalled_s)
        stalled = _rss_series(run.rss_mb, stalled_s)
        sim.configure(rate_limit_per_s=500.0)
        drained = _rss_series(run.rss_mb, drain_s)
    peak = max(stalled + drained)
    half = drained[len(drained) // 2]
    return {
        "backlog_requests": backlog,
        "peak_rss_mb": round(peak, 1),
        "rss_stalled_mb": round(stalled[-1], 1),
        "rss_mid_drain_mb": round(half, 1),
        "rss_at_drain_end_mb": round(drained[-1], 1),
        "growth_second_half_of_drain_mb": round(drained[-1] - half, 1),
        "target": "peak_rss_mb < 200, flat during the drain",
    }


def _rss_series(read: Callable[[], float], seconds: float) -> list[float]:
    taken = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        taken.append(read())
        time.sleep(0.5)
    return taken


def naive_peer(world: World) -> Figures:
    """A one-job-at-a-time loop at 50 ms, beside the processor at C = 64."""
    seconds = world.seconds(15.0)
    topics = new_topics(world.bootstrap)
    load(world.bootstrap, topics.requests, 2_000)
    with simulator(_LATENCY) as sim:
        naive = peers.naive(world.bootstrap, topics, sim.url, seconds)
    with (
        simulator(_LATENCY) as sim,
        processor(world, sim, int(1280 * (seconds + 10)), 64) as run,
    ):
        ours = measure(sim, run, seconds, warm_up=2.0).jobs_per_s
    return {
        "naive_jobs_per_s": round(naive, 1),
        "processor_jobs_per_s": round(ours, 1),
        "speed_up": round(ours / naive, 1),
        "target": "none: for comparison",
    }


SCENARIOS: dict[str, Callable[[World], Figures]] = {
    "littles_law": littles_law,
    "ceiling": ceiling,
    "tracing_cost": tracing_cost,
    "rate_limit": rate_limit,
    "rate_halving": rate_halving,
    "concurrency_cap": concurrency_cap,
    "outage": outage,
    "memory": memory,
    "naive_peer": naive_peer,
}
