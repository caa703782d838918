#!/usr/bin/env python3
"""Storage-level cost of login, list and revoke, printed as a markdown table.

    python3 bench/accounts.py                       # memory, SQLite, Redis (about 2 minutes)
    python3 bench/accounts.py --backends memory,sqlite
    python3 bench/accounts.py --no-redis            # no redis-server started

Builds `accounts` (bench/src/bin/accounts.rs) and runs it pinned to core 1;
for Redis it starts a redis-server of its own on a free port, pinned to
core 0 (as run.py does; never the system Redis), and passes its URL. SQLite
uses a fresh file in a temporary directory (WAL, as the library opens it).
A backend without accounts is reported as not measured.
"""

import argparse
import os
import shutil
import subprocess
import tempfile

from run import HERE, RELEASE, pinned, platform, start_redis


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="memory,sqlite,redis")
    parser.add_argument("--sizes", default="1,10,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=300, help="per run, for 10 sessions or fewer")
    parser.add_argument("--large-iterations", type=int, default=30, help="per run, for more than 10 sessions")
    parser.add_argument("--no-redis", action="store_true", help="do not start redis-server")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "accounts"], cwd=HERE, check=True)
    backends = args.backends.split(",")
    redis = None
    with tempfile.TemporaryDirectory() as directory:
        command = [os.path.join(RELEASE, "accounts"), "--backends", args.backends, "--sizes", args.sizes,
                   "--runs", str(args.runs), "--iterations", str(args.iterations),
                   "--large-iterations", str(args.large_iterations),
                   "--sqlite", os.path.join(directory, "sessions.db")]
        if "redis" in backends and not args.no_redis and shutil.which("redis-server"):
            redis, port = start_redis()
            command += ["--redis", f"redis://127.0.0.1:{port}/"]
        try:
            table = subprocess.run(pinned(1, command), stdout=subprocess.PIPE, text=True, check=True).stdout
        finally:
            if redis:
                redis.kill()
                redis.wait()
    print()
    print(f"Machine: {os.cpu_count()} cores, {platform()}")
    print(table, end="")


if __name__ == "__main__":
    main()
