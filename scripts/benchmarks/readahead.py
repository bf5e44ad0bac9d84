"""codeshare with its read-ahead thread and without (CODESHARE_READAHEAD=off),
interleaved, on the workloads' archives that `workloads.py` dumped.

    python readahead.py --codeshare PY --workdir DIR [--runs N] [--json OUT] [WORKLOAD...]

Per workload: the import phase (perf_counter around the import), then the
whole process with its peak RSS; medians, and on/off ratios (the median
of each round's ratio).
"""
import argparse
import json
import os
import statistics
import sys

from workloads import PHASE, WORKLOADS, clean_environment, enter_dump_directory, paired_ratio, rounds, run, run_probe

VARIANTS = {"on": {}, "off": {"CODESHARE_READAHEAD": "off"}}


def measure(python, workdir, name, runs):
    statement, argv = WORKLOADS[name]
    archive = os.path.join(workdir, name, "codeshare.csa")
    if not os.path.exists(archive):
        raise SystemExit(f"{archive}: run scripts/bench first (it dumps the archives)")
    enter_dump_directory(os.path.join(workdir, name))
    environments = {variant: clean_environment(CODESHARE_ARCHIVE=archive, **extra)
                    for variant, extra in VARIANTS.items()}
    phase = {variant: [] for variant in VARIANTS}
    process = {variant: [] for variant in VARIANTS}
    for index, variant in rounds(environments, runs):
        environment = environments[variant]
        if statement:
            sample = run_probe([python, "-c", PHASE.format(statement=statement)], environment)
            if sample is None:
                raise SystemExit(f"{name} ({variant}): import phase failed")
            if index:  # one warm-up round
                phase[variant].append(sample[0])
        elapsed, rss, _, _, status = run([python, *argv], environment)
        if status != 0:
            raise SystemExit(f"{name} ({variant}) failed")
        if index:
            process[variant].append((elapsed * 1e3, rss))
    times = {variant: [sample[0] for sample in samples] for variant, samples in process.items()}
    result = {variant: {"phase_ms": statistics.median(phase[variant]) if statement else None,
                        "ms": statistics.median(times[variant]),
                        "rss_kib": statistics.median(sample[1] for sample in process[variant])}
              for variant in VARIANTS}
    result["on_to_off"] = {"phase": paired_ratio(phase["on"], phase["off"]) if statement else None,
                           "process": paired_ratio(times["on"], times["off"])}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codeshare", required=True, help="python of the codeshare venv")
    parser.add_argument("--workdir", required=True, help="where workloads.py dumped the archives")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json")
    parser.add_argument("workloads", nargs="*", default=["boto3", "sympy", "networkx", "ipython"])
    options = parser.parse_args()
    print(f"{'workload':11} {'import phase: on':>16} {'off':>8} {'on/off':>6} | {'process: on':>11} {'off':>8} "
          f"{'on/off':>6} | {'peak RSS MiB on/off':>19}")
    results = {}
    for name in options.workloads:
        result = results[name] = measure(options.codeshare, options.workdir, name, options.runs)
        on, off, ratios = result["on"], result["off"], result["on_to_off"]
        phase = (f"{on['phase_ms']:14.1f}ms {off['phase_ms']:6.1f}ms {ratios['phase']:6.2f}"
                 if on["phase_ms"] is not None else f"{'—':>16} {'—':>8} {'—':>6}")
        print(f"{name:11} {phase} | {on['ms']:9.1f}ms {off['ms']:6.1f}ms {ratios['process']:6.2f} |"
              f" {on['rss_kib'] / 1024:9.1f} / {off['rss_kib'] / 1024:5.1f}", flush=True)
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"runs": options.runs, "results": results}, file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
