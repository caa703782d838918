#!/usr/bin/env python3
"""Instructions per request of each in-process variant, counted by callgrind.

    python3 bench/instructions.py [--variants ours-memory,ts-memory] [--routes /counter,/read,/new]

Runs `requests` under `valgrind --tool=callgrind` with 200 and 2200
requests and divides the difference by 2000, so start-up is not counted.
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


def instructions(variant, route, count, extra):
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", BINARY,
                   "--variant", variant, "--route", route, "--count", str(count),
                   "--sqlite", os.path.join(directory, "sessions.db")] + extra
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="bare,ours-memory,ts-memory,ts-moka")
    parser.add_argument("--routes", default="/counter,/read,/new")
    parser.add_argument("--redis", help="Redis URL for the redis variants")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "requests"], cwd=HERE, check=True)
    extra = ["--redis", args.redis] if args.redis else []
    routes = args.routes.split(",")
    print("| variant | " + " | ".join(routes) + " |")
    print("|---|" + "---|" * len(routes))
    for variant in args.variants.split(","):
        cells = []
        for route in routes:
            if route == "/counter-atomic" and not variant.startswith("ours"):
                cells.append("")
                continue
            per_request = (instructions(variant, route, 2200, extra) - instructions(variant, route, 200, extra)) / 2000
            cells.append(f"{per_request:,.0f}")
        print(f"| {variant} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
