"""Whole-process start-up time, plain against codeshare, interleaved.

    python startup.py --archive APP.csa [--runs N] [--json OUT] -- COMMAND...

Runs COMMAND alternately without and with CODESHARE_ARCHIVE, N times each,
checks that both print the same, and reports the medians, the median of
each pair's ratio (the two ran milliseconds apart: the machine's drift over
the run cancels out) and the median minor page faults (resource.getrusage
of the children).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from workloads import paired_ratio


def measure(command, environment):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_minflt - before.ru_minflt, result


def compare(command, archive, runs):
    plain_env = {key: value for key, value in os.environ.items() if not key.startswith("CODESHARE_")}
    shared_env = dict(plain_env, CODESHARE_ARCHIVE=archive)
    plain, shared = [], []
    for index in range(runs + 1):
        a = measure(command, plain_env)
        b = measure(command, shared_env)
        if (a[2].stdout, a[2].returncode) != (b[2].stdout, b[2].returncode) or b[2].stderr != a[2].stderr:
            raise SystemExit(f"output differs with the archive:\n{b[2].stderr.decode()[-2000:]}")
        if index:  # the first pair warms the page cache
            plain.append(a[:2])
            shared.append(b[:2])
    result = {
        "command": command,
        "runs": runs,
        "plain_ms": statistics.median(t for t, _ in plain) * 1e3,
        "codeshare_ms": statistics.median(t for t, _ in shared) * 1e3,
        "plain_faults": statistics.median(f for _, f in plain),
        "codeshare_faults": statistics.median(f for _, f in shared),
    }
    result["ratio"] = paired_ratio([t for t, _ in shared], [t for t, _ in plain])
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    result = compare(command, options.archive, options.runs)
    print(f"plain      {result['plain_ms']:7.1f} ms  {result['plain_faults']:6.0f} minor faults  (median of {options.runs})")
    print(f"codeshare  {result['codeshare_ms']:7.1f} ms  {result['codeshare_faults']:6.0f} minor faults")
    print(f"ratio      {result['ratio']:7.3f}  (codeshare / plain, median of each pair's; below 1 is faster)")
    if options.json:
        with open(options.json, "w") as file:
            json.dump(result, file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
