#!/usr/bin/env python3
"""Runs the benchmark matrix and prints it as a markdown table.

    python3 bench/run.py            # 3 runs, medians (about 20 minutes)
    python3 bench/run.py --quick    # 1 short run (about a minute)
    python3 bench/run.py --variants bare,ours-redis,ts-redis   # a subset
    python3 bench/run.py --variants ours-memory --baseline ../old/bench/target/release
                                    # each variant also as built elsewhere
    python3 bench/run.py --contention-only --variants ours-memory,ours-redis,ours-sqlite
                                    # only the requests in flight per session

With --baseline, every variant runs twice in each run, first from the
baseline's `server` (named `<variant>@baseline`), then from this one, so a
change is measured side by side under the same conditions.

Each variant of `server` serves the same app; `load` drives it with 64
users (one keep-alive connection and cookie each, closed loop) and reports
requests/s, latency, server CPU per request and Redis commands per request.
The server and redis-server are pinned to core 0, the load to core 1 (where
`taskset` exists). Then contention: 64 connections in all, 4, 16 or 64 of
them per session (16, 4 or 1 users; `ts-*` variants only 4), count errors
(503s apart: `Contended` on /counter-atomic) and lost increments on
/counter and /counter-atomic. For ours-redis and ours-sqlite the same
again with two `server` processes on one Redis or one SQLite file, each
session's connections split across both (variant `<name> x2`).
`redis-benchmark` gives the Redis server's own limit. Results go to
bench/results.tsv.
"""

import argparse
import os
import shutil
import socket
import statistics
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RELEASE = os.path.join(HERE, "target", "release")
VARIANTS = ["bare", "ours-memory", "ts-memory", "ts-moka", "ours-redis", "ts-redis", "ours-sqlite", "ts-sqlite"]
FIELDS = ["route", "users", "inflight", "rps", "p50_us", "p99_us", "errors", "wrong", "cpu_us", "redis_cmds", "redis_cpu_us", "acked", "lost", "unavailable"]
# Requests in flight per session in the contention workloads, of 64 in all.
CONTENTION = [4, 16, 64]
TOTAL_IN_FLIGHT = 64
# The variants also run as two server processes on one store.
TWO_PROCESSES = ["ours-redis", "ours-sqlite"]


def pinned(core, command):
    return (["taskset", "-c", str(core)] if shutil.which("taskset") else []) + command


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis():
    port = free_port()
    process = subprocess.Popen(
        pinned(0, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, port
        except OSError:
            time.sleep(0.02)
    sys.exit("redis-server did not start")


def start_server(variant, release, redis_port, sqlite_file):
    command = [os.path.join(release, "server"), "--variant", variant, "--sqlite", sqlite_file]
    if redis_port:
        command += ["--redis", f"redis://127.0.0.1:{redis_port}/"]
    process = subprocess.Popen(pinned(0, command), stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def routes(variant):
    if variant == "bare":
        return ["/counter", "/read", "/new"]
    return ["/counter", "/read", "/new"] + (["/counter-atomic"] if variant.startswith("ours") else [])


def load(addresses, route, servers, redis_port, users, inflight, warmup, duration):
    command = [os.path.join(RELEASE, "load"), "--addr", ",".join(addresses), "--route", route, "--users", str(users),
               "--inflight", str(inflight), "--warmup", str(warmup), "--duration", str(duration),
               "--server-pid", ",".join(str(server.pid) for server in servers)]
    if redis_port:
        command += ["--redis-port", str(redis_port)]
    line = subprocess.run(pinned(1, command), capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return dict(zip(FIELDS, line.split("\t")))


def run_variant(variant, args, results, release=RELEASE, name=None):
    run_servers(variant, 1, args, results, release, name or variant)
    if variant in TWO_PROCESSES:
        run_servers(variant, 2, args, results, release, f"{name or variant} x2")


def run_servers(variant, processes, args, results, release, name):
    """Runs the workloads on `processes` servers of `variant` sharing one store."""
    redis, redis_port = start_redis() if "redis" in variant else (None, None)
    with tempfile.TemporaryDirectory() as directory:
        # One after the other: each prints its address once its store is open.
        started = [start_server(variant, release, redis_port, os.path.join(directory, "sessions.db"))
                   for _ in range(processes)]
        servers, addresses = [server for server, _ in started], [address for _, address in started]
        try:
            if processes == 1 and not args.contention_only:
                for route in routes(variant):
                    row = load(addresses, route, servers, redis_port, 64, 1, args.warmup, args.duration)
                    results.append({"variant": name, **row})
                    print(f"  {name:12} {route:16} {float(row['rps']):>9.0f} req/s  cpu {row['cpu_us']:>6} us/req", flush=True)
            if variant != "bare":
                contention(variant, name, addresses, servers, redis_port if processes == 1 else None, args, results)
        finally:
            for server in servers:
                server.kill()
                server.wait()
            if redis:
                redis.kill()
                redis.wait()


def contention(variant, name, addresses, servers, redis_port, args, results):
    """Several requests in flight per session on the counter routes."""
    for route in [r for r in routes(variant) if r.startswith("/counter")]:
        for inflight in CONTENTION if variant.startswith("ours") else CONTENTION[:1]:
            users = TOTAL_IN_FLIGHT // inflight
            row = load(addresses, route, servers, redis_port, users, inflight, args.warmup / 2, args.duration / 2)
            results.append({"variant": name, **row})
            print(f"  {name:12} {route:16} {inflight:>2} in flight: lost {row['lost']} of {row['acked']}, "
                  f"{row['errors']} errors ({row['unavailable']} 503s)", flush=True)


# A minimal compare-and-write: compare one field, write two and the expiry
# (what a conditioned session write needs at the least).
COMPARE_AND_WRITE = ("if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then "
                     "redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2]) "
                     "redis.call('PEXPIRE', KEYS[1], 600000) end return 1")


def redis_limit():
    """The Redis server's own limit on this machine: requests per second of
    plain commands and of a minimal compare-and-write script (64 clients),
    and Redis's own time per call of each (`INFO commandstats`)."""
    if not shutil.which("redis-benchmark"):
        return "redis-benchmark not installed"
    redis, port = start_redis()
    bench = ["redis-benchmark", "-p", str(port), "-q", "-n", "200000", "-c", "64"]
    cli = ["redis-cli", "-p", str(port)]
    try:
        out = subprocess.run(pinned(1, bench + ["-t", "get,set,hset"]), capture_output=True, text=True).stdout
        subprocess.run(cli + ["HSET", "session", "v", "1", "d", "x"], capture_output=True, check=True)
        out += subprocess.run(pinned(1, bench + ["EVAL", COMPARE_AND_WRITE, "1", "session", "1", "x"]),
                              capture_output=True, text=True).stdout
        rates = [re.sub(r"^EVAL .*?:", "EVAL compare-and-write:", line.strip().split("\r")[-1])
                 for line in out.splitlines() if "requests per second" in line]
        stats = subprocess.run(cli + ["INFO", "commandstats"], capture_output=True, text=True).stdout
        per_call = [f"{name.upper()} {usec} µs" for name, usec in re.findall(
            r"cmdstat_(get|set|hset|eval):.*?usec_per_call=([0-9.]+)", stats)]
        return "; ".join(rates) + ". Redis time per call: " + ", ".join(per_call)
    finally:
        redis.kill()
        redis.wait()


def median_rows(results):
    groups = {}
    for row in results:
        groups.setdefault((row["variant"], row["route"], row["inflight"]), []).append(row)
    merged = []
    for (variant, route, inflight), rows in groups.items():
        row = dict(rows[0])
        for field in ["rps", "p50_us", "p99_us", "errors", "wrong", "cpu_us", "redis_cmds", "redis_cpu_us", "acked", "lost", "unavailable"]:
            values = [float(r[field]) for r in rows if r[field] != "NaN"]
            row[field] = statistics.median(values) if values else float("nan")
        merged.append(row)
    return merged


def table(rows):
    bare = {r["route"]: r["cpu_us"] for r in rows if r["variant"] == "bare"}
    lines = ["| variant | route | in flight | req/s | p50 µs | p99 µs | server CPU µs/req | above bare | Redis round trips/req | Redis CPU µs/req | errors | lost / acked |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = bare.get(r["route"].replace("-atomic", ""), float("nan"))
        above = r["cpu_us"] - base if r["variant"] != "bare" and r["inflight"] == "1" else float("nan")
        lost = f"{r['lost']:.0f} / {r['acked']:.0f}" if r["route"].startswith("/counter") and r["variant"] != "bare" else ""
        cmds = "" if r["redis_cmds"] != r["redis_cmds"] else f"{r['redis_cmds']:.2f}"
        redis_cpu = "" if r["redis_cpu_us"] != r["redis_cpu_us"] else f"{r['redis_cpu_us']:.2f}"
        above_text = "" if above != above else f"{above:+.2f}"
        lines.append(f"| {r['variant']} | {r['route']} | {r['inflight']} | {r['rps']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                     f"{r['cpu_us']:.2f} | {above_text} | {cmds} | {redis_cpu} | {r['errors']:.0f} | {lost} |")
    return "\n".join(lines)


def contention_table(rows):
    """The contention rows: errors and 503s per request measured, lost increments."""
    lines = ["| variant | route | in flight per session | sessions | req/s | p99 µs | errors | 503s | 503 rate | lost / acked |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in [r for r in rows if r["inflight"] != "1"]:
        measured = r["rps"] * r["duration"]
        rate = r["unavailable"] / measured if measured else float("nan")
        lines.append(f"| {r['variant']} | {r['route']} | {r['inflight']} | {r['users']} | {r['rps']:.0f} | {r['p99_us']:.0f} | "
                     f"{r['errors']:.0f} | {r['unavailable']:.0f} | {rate:.2%} | {r['lost']:.0f} / {r['acked']:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "results.tsv"))
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset to run, e.g. bare,ours-redis,ts-redis")
    parser.add_argument("--baseline", help="a release directory holding another build's `server`")
    parser.add_argument("--contention-only", action="store_true",
                        help="only the workloads with several requests in flight per session")
    args = parser.parse_args()
    args.warmup, args.duration = (0.5, 1.5) if args.quick else (2.0, 5.0)
    runs = 1 if args.quick else args.runs
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "server", "--bin", "load"], cwd=HERE, check=True)
    results = []
    for run in range(runs):
        print(f"run {run + 1} of {runs}", flush=True)
        for variant in args.variants.split(","):
            if args.baseline:
                run_variant(variant, args, results, args.baseline, f"{variant}@baseline")
            run_variant(variant, args, results)
    rows = median_rows(results)
    with open(args.out, "w") as out:
        out.write("variant\t" + "\t".join(FIELDS) + "\n")
        for r in rows:
            out.write("\t".join([r["variant"]] + [str(r[f]) for f in FIELDS]) + "\n")
    print()
    print(f"Median of {runs} run(s); machine: {os.cpu_count()} cores, {platform()}")
    print(table(rows))
    print()
    print(contention_table([{**r, "duration": args.duration / 2} for r in rows]))
    print()
    if args.contention_only:
        return
    print("Redis limit (redis-benchmark, 64 clients, the last EVAL a minimal compare-and-write):", redis_limit())


def platform():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


if __name__ == "__main__":
    main()
