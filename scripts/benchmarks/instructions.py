"""What codeshare adds to `python -c pass`, and what its import phase
executes against the limit's, counted instead of timed: the instructions
a process executes (valgrind --tool=callgrind) do not drift with the
machine, so effects of 0.01-0.5 ms that whole-process timings cannot
resolve here are seen exactly. Each count is the median over hash seeds
0, 1 and 2 (dict layouts, and with them probe lengths, vary with the seed).

    python instructions.py --plain PY --codeshare PY --cds PY --workdir DIR
                           [--phase WORKLOAD] [--json OUT]

  plain                the venv without codeshare;
  hook set aside       the codeshare venv with its codeshare.pth renamed away;
  empty .pth           ... with an empty file in its place, and
  `import posix` .pth  ... with that one line: what any .pth hook costs at
                       least, the file read and a line compiled and run (in
                       a venv, site.py reads its site-packages' .pth files twice);
  hook disabled        the codeshare venv, CODESHARE_ARCHIVE unset;
  codeshare            the codeshare venv serving the archive dumped for `-c pass`;
  cds disabled         the code-data-share venv, PYCDSMODE unset;
  code-data-share      the code-data-share venv serving its archive for `-c pass`;
  import codeshare     `-c "import codeshare"` in the codeshare venv, hook disabled;
  import codeshare._core  the same importing the extension: the extension
                       import's own cost, over the package's, which timing
                       here cannot resolve (+-0.15 ms between runs);
  ...load_extension()  the same loading the extension as the hook does,
                       from its file, without a search of the package.
The archives are dumped in DIR/pass (as `scripts/bench` does), which is
also the working directory of every count.

The import phase of WORKLOAD (default boto3; dumped in DIR/WORKLOAD): the
instructions of a process that runs the import statement and exits at
once (no teardown), less those of the same process without the statement,
for plain, code-data-share, codeshare and the limit (workloads.py). For
codeshare, those of the interpreter's thread (the phase's critical path)
and of the read-ahead thread beside it; valgrind runs one thread at a
time, so which of the two prepares a module can vary from run to run.
Instructions are not time: this leaves out the kernel (stat, madvise,
page faults) and every cache miss.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

from overhead import FLOOR_HOOKS, hook_path, set_aside
from workloads import LIMIT_SETUP, Tools, WORKLOADS, clean_environment

SEEDS = (0, 1, 2)
# A counted phase: the statement, then the process ends without teardown.
COUNTED = "{statement}\nimport os\nos._exit(0)\n"


def thread_instructions(command, environment, seed):
    """The instructions `command` executes under one hash seed, per thread in
    the order the threads started."""
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, "callgrind.out")
        result = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                                 f"--callgrind-out-file={output}", *command],
                                capture_output=True, text=True, env={**environment, "PYTHONHASHSEED": str(seed)})
        threads = []
        for path in sorted(glob.glob(output + "-*")):
            with open(path) as file:
                summary = re.search(r"^summary: (\d+)", file.read(), re.MULTILINE)
            threads.append(int(summary.group(1)) if summary else None)
    if result.returncode != 0 or not threads or None in threads:
        raise SystemExit(f"callgrind failed for {command}: {result.stderr.strip()[-300:]}")
    return threads


def instructions(command, environment):
    """The median over SEEDS of the instructions `command` executes."""
    return statistics.median(sum(thread_instructions(command, environment, seed)) for seed in SEEDS)


def phase_instructions(python, environment, statement, setup=""):
    """The medians over SEEDS of the import phase's instructions on the
    interpreter's thread and on all threads: `python -c` with `setup` and
    the counted statement, less the same with the counted `pass`."""
    main, total = [], []
    for seed in SEEDS:
        with_import = thread_instructions([python, "-c", setup + COUNTED.format(statement=statement)], environment, seed)
        without = thread_instructions([python, "-c", setup + COUNTED.format(statement="pass")], environment, seed)
        main.append(with_import[0] - without[0])
        total.append(sum(with_import) - sum(without))
    return statistics.median(main), statistics.median(total)


def count_phase(options):
    """The import phase of `options.phase` with each tool and the limit."""
    statement, argv = WORKLOADS[options.phase]
    tools = Tools(options, options.phase, argv)
    tools.prepare()
    tools.check_outputs()
    counts = {label: phase_instructions(tools.pythons[tool], tools.environments[tool], statement)
              for label, tool in (("plain", "plain"), ("code-data-share", "cds"), ("codeshare", "codeshare"))}
    counts["limit"] = phase_instructions(tools.pythons["codeshare"], clean_environment(), statement,
                                         setup=LIMIT_SETUP.format(archive=tools.archive))
    return statement, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", required=True)
    parser.add_argument("--codeshare", required=True)
    parser.add_argument("--cds", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--phase", default="boto3", choices=[name for name, (statement, _) in WORKLOADS.items()
                                                               if statement not in (None, "pass")])
    parser.add_argument("--json")
    options = parser.parse_args()
    tools = Tools(options, "pass", WORKLOADS["pass"][1])
    tools.prepare()
    tools.check_outputs()
    command = {tool: [python, *tools.argv] for tool, python in tools.pythons.items()}
    environment = clean_environment()
    counts = {"plain": instructions(command["plain"], environment)}
    hook = hook_path(options.codeshare, environment)
    with set_aside(hook):
        counts["hook set aside"] = instructions(command["codeshare"], environment)
    for label, stand_in in FLOOR_HOOKS.items():
        with set_aside(hook, stand_in):
            counts[label] = instructions(command["codeshare"], environment)
    counts["hook disabled"] = instructions(command["codeshare"], environment)
    counts["codeshare"] = instructions(command["codeshare"], tools.environments["codeshare"])
    counts["cds disabled"] = instructions(command["cds"], environment)
    counts["code-data-share"] = instructions(command["cds"], tools.environments["cds"])
    for statement in ("import codeshare", "import codeshare._core", "import codeshare; codeshare.load_extension()"):
        counts[statement] = instructions([tools.pythons["codeshare"], "-c", statement], environment)
    over = {"hook set aside": "plain", **{label: "hook set aside" for label in FLOOR_HOOKS},
            "hook disabled": "hook set aside", "codeshare": "plain",
            "cds disabled": "plain", "code-data-share": "plain",
            "import codeshare": "hook disabled", "import codeshare._core": "import codeshare",
            "import codeshare; codeshare.load_extension()": "import codeshare"}
    print(f"python -c pass (or the import named), instructions (callgrind, median of hash seeds "
          f"{', '.join(map(str, SEEDS))}):")
    width = max(map(len, counts)) + 1
    for label, count in counts.items():
        base = over.get(label)
        versus = f"  {count - counts[base]:+,.0f} over {base}" if base else ""
        print(f"  {label:<{width}}{count:>14,.0f}{versus}")
    statement, phase = count_phase(options)
    limit = phase["limit"][0]
    print(f"{statement}: the import phase, instructions on the interpreter's thread (all threads), and / limit:")
    for label, (main, total) in phase.items():
        print(f"  {label:<17}{main:>14,.0f} ({total:,.0f})  {main / limit:.3f}")
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"seeds": list(SEEDS), "instructions": counts, "over": over,
                       "phase": {"statement": statement,
                                 "instructions": {label: {"interpreter_thread": main, "all_threads": total}
                                                  for label, (main, total) in phase.items()}}},
                      file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
