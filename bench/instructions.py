#!/usr/bin/env python3
"""Instructions per request of each in-process variant, counted by callgrind.

    python3 bench/instructions.py [--variants ours-memory,ts-memory] [--routes /counter,/read,/new]
    python3 bench/instructions.py --variants ours-memory --baseline ../old/bench/target/release/requests

Runs `requests` under `valgrind --tool=callgrind` with 200 and 2200
requests and divides the difference by 2000, so start-up is not counted;
in brackets, the allocations per request (calls to the allocator, counted
by `requests` itself the same way).
Instruction counts are repeatable (the same binary and inputs give the same
count whatever else the machine is doing), unlike CPU time; they leave out
the kernel (no sockets here) and count work, not cache misses.
"""

import argparse
import os
import re
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.join(HERE, "target", "release", "requests")


def instructions(binary, variant, route, count, extra):
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
                   "--variant", variant, "--route", route, "--count", str(count),
                   "--sqlite", os.path.join(directory, "sessions.db")] + extra
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        # Builds from before the count print none.
        counted = re.search(r"allocations (\d+)", result.stdout)
        allocations = int(counted.group(1)) if counted else None
        return int(re.search(r"Collected : (\d+)", result.stderr).group(1)), allocations


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="bare,ours-memory,ts-memory,ts-moka")
    parser.add_argument("--routes", default="/counter,/read,/new")
    parser.add_argument("--redis", help="Redis URL for the redis variants")
    parser.add_argument("--baseline", help="another build's `requests`: each variant is counted with it too")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "requests"], cwd=HERE, check=True)
    extra = ["--redis", args.redis] if args.redis else []
    routes = args.routes.split(",")
    print("| variant | " + " | ".join(routes) + " |")
    print("|---|" + "---|" * len(routes))
    binaries = [("{}@baseline", args.baseline)] if args.baseline else []
    binaries.append(("{}", BINARY))
    for variant in args.variants.split(","):
        for name, binary in binaries:
            cells = [count(binary, variant, route, extra) for route in routes]
            print(f"| {name.format(variant)} | " + " | ".join(cells) + " |", flush=True)


def count(binary, variant, route, extra):
    """The instructions per request of one cell, as text."""
    if route == "/counter-atomic" and not variant.startswith("ours"):
        return ""
    (many, many_allocations) = instructions(binary, variant, route, 2200, extra)
    (few, few_allocations) = instructions(binary, variant, route, 200, extra)
    per_request = (many - few) / 2000
    if many_allocations is None or few_allocations is None:
        return f"{per_request:,.0f}"
    allocations = (many_allocations - few_allocations) / 2000
    return f"{per_request:,.0f} ({allocations:.1f})"


if __name__ == "__main__":
    main()
