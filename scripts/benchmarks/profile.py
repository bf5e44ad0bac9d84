"""Where codeshare's import phase spends more than the limit's: perf samples
of the interpreter's thread taken inside the phase only, shared library by
shared library and function by function, on a workload's archive that
`workloads.py` dumped.

    python profile.py --codeshare PY --workdir DIR [--runs N] [--frequency HZ] [--top K] [--json OUT] WORKLOAD

One `perf record` (cpu-clock, sample times on CLOCK_MONOTONIC) runs the
codeshare probe and the limit's in the other benchmarks' alternating order
(workloads.rounds), so that the machine's drift falls on both; each probe
prints its pid and when its phase started and ended on CLOCK_MONOTONIC,
and only the samples of that pid's first thread inside that window
count. A whole-process profile cannot compare the two: the limit
materializes every code object before its clock.
Reported per run, in ms (samples / runs / frequency): each shared object,
then the functions whose time differs most. Sampling slows both down:
~10% on the hosts of the 29th-33rd sessions, ~60% at 20 kHz on the 34th's
(there `--frequency 2000` with more runs). codeshare's extension is
stripped: its own functions show as one `[unknown]` (build it without `-s`
to see them).
"""
import argparse
import collections
import json
import os
import shlex
import subprocess
import sys
import tempfile

from workloads import LIMIT_SETUP, WORKLOADS, clean_environment, enter_dump_directory, rounds, served_output

VARIANTS = ("codeshare", "limit")
# The phase, with what tells its samples apart: pid and window on the clock perf stamps samples with.
WINDOW = ("import os, time\nstart = time.clock_gettime(time.CLOCK_MONOTONIC)\n{statement}\n"
          "print('window', {variant!r}, os.getpid(), start, time.clock_gettime(time.CLOCK_MONOTONIC))\n")


def runner(directory, python, archive, statement, runs):
    """A shell script that runs the two probes in workloads.py's order (a
    warm-up round, whose windows say so and do not count, then `runs`
    rounds), each in the environment it needs."""
    def command(variant, label):
        setup = LIMIT_SETUP.format(archive=archive) if variant == "limit" else ""
        environment = f"CODESHARE_ARCHIVE={shlex.quote(archive)} " if variant == "codeshare" else ""
        program = setup + WINDOW.format(statement=statement, variant=label)
        return f"env {environment}{shlex.quote(python)} -c {shlex.quote(program)}"
    lines = ["#!/bin/sh"]
    lines.extend(command(variant, variant if index else "warm-up") for index, variant in rounds(VARIANTS, runs))
    script = os.path.join(directory, "rounds.sh")
    with open(script, "w") as file:
        file.write("\n".join(lines) + "\n")
    return script


def phase_samples(data, windows):
    """(variant, shared object, function) -> samples of the importing thread inside its phase."""
    listing = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,time,ip,sym,dso"],
                             capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    for line in listing.splitlines():
        fields = line.split(None, 3)   # pid/tid, time, address, "function (shared object)"
        if len(fields) < 4 or "/" not in fields[0]:
            continue
        pid, tid = fields[0].split("/")
        window = windows.get(pid)
        if window is None or tid != pid:
            continue
        variant, start, end = window
        if not start <= float(fields[1].rstrip(":")) <= end:
            continue
        function, _, library = fields[3].rpartition(" (")
        counts[variant, os.path.basename(library.rstrip(")")), function.strip() or "[unknown]"] += 1
    return counts


def profile(python, workdir, name, runs, frequency):
    statement, argv = WORKLOADS[name]
    if statement in (None, "pass"):
        raise SystemExit(f"{name}: no import phase to profile")
    archive = os.path.join(workdir, name, "codeshare.csa")
    if not os.path.exists(archive):
        raise SystemExit(f"{archive}: run scripts/bench first (it dumps the archives)")
    enter_dump_directory(os.path.join(workdir, name))
    served_output(python, argv, clean_environment(CODESHARE_ARCHIVE=archive))
    with tempfile.TemporaryDirectory() as directory:
        script = runner(directory, python, archive, statement, runs)
        data = os.path.join(directory, "perf.data")
        recorded = subprocess.run(["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-F", str(frequency), "-o", data,
                                   "sh", script], capture_output=True, text=True, env=clean_environment())
        if recorded.returncode != 0:
            raise SystemExit(f"perf record failed: {recorded.stderr.strip()[-300:]}")
        windows = {}
        for line in recorded.stdout.splitlines():
            if line.startswith("window "):
                _, label, pid, start, end = line.split()
                variant = label.strip("'")
                if variant in VARIANTS:
                    windows[pid] = (variant, float(start), float(end))
        counts = phase_samples(data, windows)
    per_run = {key: count / runs / frequency * 1e3 for key, count in counts.items()}
    phases = collections.Counter()
    for (variant, _, _), value in per_run.items():
        phases[variant] += value
    libraries, functions = collections.Counter(), collections.Counter()
    for (variant, library, function), value in per_run.items():
        sign = 1 if variant == "codeshare" else -1
        libraries[library] += sign * value
        functions[f"{function} ({library})"] += sign * value
    # Functions within a microsecond a run of the limit are left out.
    return {"phase_ms": dict(phases), "libraries": dict(libraries),
            "functions": {function: round(value, 4) for function, value in functions.items() if abs(value) >= 0.001}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codeshare", required=True, help="python of the codeshare venv")
    parser.add_argument("--workdir", required=True, help="where workloads.py dumped the archives")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--frequency", type=int, default=20000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json")
    parser.add_argument("workload")
    options = parser.parse_args()
    result = profile(options.codeshare, options.workdir, options.workload, options.runs, options.frequency)
    phase = result["phase_ms"]
    print(f"{options.workload}: import phase, interpreter's thread, sampled: codeshare {phase['codeshare']:.2f} ms, "
          f"limit {phase['limit']:.2f} ms a run ({options.runs} runs each)")
    print("codeshare - limit, ms a run, by shared object:")
    for library, value in sorted(result["libraries"].items(), key=lambda item: -abs(item[1]))[:8]:
        print(f"  {value:+7.3f}  {library}")
    ordered = sorted(result["functions"].items(), key=lambda item: -item[1])
    print(f"the {options.top} functions codeshare spends most more in:")
    for function, value in ordered[:options.top]:
        print(f"  {value:+7.3f}  {function}")
    print("and the 10 it spends most less in:")
    for function, value in ordered[:-11:-1]:
        print(f"  {value:+7.3f}  {function}")
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"workload": options.workload, "runs": options.runs, "frequency": options.frequency,
                       **result}, file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
