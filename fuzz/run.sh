#!/bin/sh
# Usage: fuzz/run.sh SECONDS
#
# Runs every fuzz target for SECONDS, each on a scratch copy of its seed
# corpus (so a run leaves the repository as it was), and fails on the first
# target that finds a crash; its input is kept in fuzz/artifacts/<target>/.
# Stable Rust is enough: `--sanitizer none` needs no nightly flags.
set -eu

seconds=${1:?usage: fuzz/run.sh SECONDS}
cd "$(dirname "$0")"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cargo fuzz build --sanitizer none
for target in $(cargo fuzz list); do
    cp -R "corpus/$target" "$scratch/$target"
    # -timeout: an input that takes 10 s is a hang, reported as a crash.
    cargo fuzz run --sanitizer none "$target" "$scratch/$target" -- \
        -max_total_time="$seconds" -timeout=10
done
