"""What codeshare adds to `python -c pass`, counted instead of timed: the
instructions a process executes (valgrind --tool=callgrind) do not drift
with the machine, so effects of 0.01-0.5 ms that whole-process timings
cannot resolve here are seen exactly. Each count is the median over hash
seeds 0, 1 and 2 (dict layouts, and with them probe lengths, vary with
the seed).

    python instructions.py --plain PY --codeshare PY --cds PY --workdir DIR [--json OUT]

  plain                the venv without codeshare;
  hook set aside       the codeshare venv with its codeshare.pth renamed away;
  hook disabled        the codeshare venv, CODESHARE_ARCHIVE unset;
  codeshare            the codeshare venv serving the archive dumped for `-c pass`;
  cds disabled         the code-data-share venv, PYCDSMODE unset;
  code-data-share      the code-data-share venv serving its archive for `-c pass`.
The archives are dumped in DIR/pass (as `scripts/bench` does), which is
also the working directory of every count.
"""
import argparse
import json
import re
import statistics
import subprocess
import sys

from overhead import hook_path, set_aside
from workloads import Tools, WORKLOADS, clean_environment

SEEDS = (0, 1, 2)


def instructions(command, environment):
    """The median over SEEDS of the instructions `command` executes."""
    counts = []
    for seed in SEEDS:
        result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                                capture_output=True, text=True, env={**environment, "PYTHONHASHSEED": str(seed)})
        collected = re.search(r"Collected : (\d+)", result.stderr)
        if result.returncode != 0 or collected is None:
            raise SystemExit(f"callgrind failed for {command}: {result.stderr.strip()[-300:]}")
        counts.append(int(collected.group(1)))
    return statistics.median(counts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", required=True)
    parser.add_argument("--codeshare", required=True)
    parser.add_argument("--cds", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--json")
    options = parser.parse_args()
    tools = Tools(options, "pass", WORKLOADS["pass"][1])
    tools.prepare()
    tools.check_outputs()
    command = {tool: [python, *tools.argv] for tool, python in tools.pythons.items()}
    environment = clean_environment()
    counts = {"plain": instructions(command["plain"], environment)}
    with set_aside(hook_path(options.codeshare, environment)):
        counts["hook set aside"] = instructions(command["codeshare"], environment)
    counts["hook disabled"] = instructions(command["codeshare"], environment)
    counts["codeshare"] = instructions(command["codeshare"], tools.environments["codeshare"])
    counts["cds disabled"] = instructions(command["cds"], environment)
    counts["code-data-share"] = instructions(command["cds"], tools.environments["cds"])
    over = {"hook set aside": "plain", "hook disabled": "hook set aside", "codeshare": "plain",
            "cds disabled": "plain", "code-data-share": "plain"}
    print(f"python -c pass, instructions (callgrind, median of hash seeds {', '.join(map(str, SEEDS))}):")
    for label, count in counts.items():
        base = over.get(label)
        versus = f"  {count - counts[base]:+,.0f} over {base}" if base else ""
        print(f"  {label:<17}{count:>14,.0f}{versus}")
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"seeds": list(SEEDS), "instructions": counts, "over": over}, file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
