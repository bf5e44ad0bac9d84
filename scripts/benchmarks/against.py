"""This tree's codeshare against another revision's, for optimization work:
the import phase of each, interleaved with the limit, and the paired ratios.

    python against.py --codeshare PY --against PY --revision REV --workdir DIR
                      [--runs N] [--stir --plain PY] [--elsewhere] [--json OUT] [WORKLOAD...]

Per workload each build dumps its own archive (DIR/WORKLOAD-against/: an
archive of one schema may be refused by a build of another), both are
checked to serve what they import and to print what the other prints, then
rounds of the three probes in alternating order: the limit (on this tree's
archive), this tree, the other revision. Reported: medians, this tree over
the other (the median of each round's ratio, with its 95% interval), and
each over the limit. A change is worth keeping when its interval leaves 1.

--elsewhere times the probes in an empty directory beside the dump's, as
a program started from another working directory: '' first on sys.path
then names a directory the dump never saw.

--stir runs the workload once under plain CPython before each round, as
the full bench's rotation does between a tool's probes: memory freed and
taken again, and huge pages the host must back anew. Only so did sympy's
tail of slow rounds show (33rd session: 10-18 of 100 stirred rounds at
1.2x the median or more, none of 41 unstirred ones).
"""
import argparse
import json
import os
import statistics
import sys
import time

from workloads import (LIMIT, PHASE, WORKLOADS, clean_environment, enter_dump_directory, paired_ratio,
                       paired_ratio_interval, rounds, run, run_probe, served_output)

BUILDS = ("new", "old")


def dump_and_check(pythons, archives, argv):
    for build in BUILDS:
        dumped = run([pythons[build], "-m", "codeshare", "dump", "-o", archives[build], *argv], clean_environment())
        if dumped[4] != 0 or not os.path.exists(archives[build]):
            raise SystemExit(f"{build}: codeshare dump failed for {argv}")
    # A dump changes the directory the probes run in; two seconds on, it
    # is not "recently changed" for the other build's archive either.
    time.sleep(2)
    outputs = {served_output(pythons[build], argv, clean_environment(CODESHARE_ARCHIVE=archives[build]))
               for build in BUILDS}
    if len(outputs) != 1:
        raise SystemExit(f"the two builds print different things for {argv}")


def measure(pythons, workdir, name, runs, stir, elsewhere):
    statement, argv = WORKLOADS[name]
    if statement in (None, "pass"):
        raise SystemExit(f"{name}: no import phase to compare")
    directory = os.path.join(workdir, f"{name}-against")
    os.makedirs(directory, exist_ok=True)
    enter_dump_directory(directory)
    archives = {build: os.path.join(directory, f"{build}.csa") for build in BUILDS}
    dump_and_check(pythons, archives, argv)
    if elsewhere:
        os.makedirs(f"{directory}-elsewhere", exist_ok=True)
        os.chdir(f"{directory}-elsewhere")
    probes = {"limit": ([pythons["new"], "-c", LIMIT.format(archive=archives["new"], statement=statement)],
                        clean_environment())}
    for build in BUILDS:
        probes[build] = ([pythons[build], "-c", PHASE.format(statement=statement)],
                         clean_environment(CODESHARE_ARCHIVE=archives[build]))
    phase = {variant: [] for variant in probes}
    stirred = None
    for index, variant in rounds(probes, runs):
        if stir and stirred != index:
            stirred = index
            if run([pythons["plain"], *argv], clean_environment())[4] != 0:
                raise SystemExit(f"{name}: plain CPython failed on {argv}")
        measured = run_probe(*probes[variant])
        if measured is None:
            raise SystemExit(f"{name} ({variant}) failed")
        if index:
            phase[variant].append(measured[0])
    return {"phase_ms": {variant: statistics.median(times) for variant, times in phase.items()},
            "new_to_old": paired_ratio(phase["new"], phase["old"]),
            "new_to_old_interval": paired_ratio_interval(phase["new"], phase["old"]),
            "to_limit": {build: paired_ratio(phase[build], phase["limit"]) for build in BUILDS}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codeshare", required=True, help="python of the venv with this tree's codeshare")
    parser.add_argument("--against", required=True, help="python of the venv with the other revision's")
    parser.add_argument("--plain", help="python of the venv without codeshare, for --stir")
    parser.add_argument("--revision", required=True, help="the other revision, for the report")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--stir", action="store_true", help="a plain run of the workload before each round")
    parser.add_argument("--elsewhere", action="store_true", help="the probes run in another directory than the dump")
    parser.add_argument("--json")
    parser.add_argument("workloads", nargs="*", default=["boto3", "networkx", "rich", "ipython"])
    options = parser.parse_args()
    if options.stir and not options.plain:
        parser.error("--stir needs --plain")
    pythons = {"new": options.codeshare, "old": options.against, "plain": options.plain}
    each = (", each after a plain run" if options.stir else "") + (", in another directory" if options.elsewhere else "")
    print(f"import phase, this tree against {options.revision}, {options.runs} interleaved rounds{each}:")
    print(f"{'workload':11} {'limit':>8} {'this tree':>10} {options.revision[:10]:>10} | "
          f"{'tree/other (95%)':>22} | {'tree/limit':>10} {'other/limit':>11}")
    results = {}
    for name in options.workloads:
        result = results[name] = measure(pythons, options.workdir, name, options.runs, options.stir,
                                                 options.elsewhere)
        ms, limit = result["phase_ms"], result["to_limit"]
        low, high = result["new_to_old_interval"]
        print(f"{name:11} {ms['limit']:6.1f}ms {ms['new']:8.1f}ms {ms['old']:8.1f}ms | "
              f"{result['new_to_old']:9.3f} {low:6.3f}-{high:.3f} | "
              f"{limit['new']:10.3f} {limit['old']:11.3f}", flush=True)
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"revision": options.revision, "runs": options.runs, "stir": options.stir,
                       "elsewhere": options.elsewhere, "results": results},
                      file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
