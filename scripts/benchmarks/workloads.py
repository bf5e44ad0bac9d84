"""Start-up of real workloads: plain CPython, codeshare and code-data-share
side by side, and the limit codeshare aims at.

    python workloads.py --plain PY --codeshare PY --cds PY --workdir DIR
                        [--runs N] [--quick] [--json OUT] [--chart OUT.png]

Each venv's python holds the same workload packages; the codeshare venv has
codeshare installed, the cds venv code-data-share 0.1.0. First, for every
workload:
  1. archives: `python -m codeshare dump`, and code-data-share's
     TRACE -> cds.dump.run_dump -> SHARE flow;
  2. every tool's output must match plain's.
Then, a block of rounds of each workload at a time (BLOCK_ROUNDS), the
workloads taking turns until each has had all its rounds:
  3. whole processes, interleaved (plain, codeshare, cds, cds, codeshare, plain, ...):
     median wall time, peak RSS and minor page faults, and each tool's
     ratio to plain as the median of the ratios within a round, and
     codeshare's to code-data-share's the same way;
  4. the import phase inside the process (perf_counter around the import,
     interpreter start excluded) for plain, codeshare, cds and the limit: a
     process whose code objects were all materialized before the clock,
     whose every lookup of an archived module a dict answers and whose
     directories were listed (nothing read or unmarshalled; a name not
     found is looked up in listings); and for each, the teardown: from the
     end of the import to the process's exit (finalization, which frees what
     the program made); ratios again within a round, codeshare / limit too,
     and the share of plain's phase over the limit's that codeshare saves
     ("captured").
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(os.path.dirname(HERE), "demo-app", "report.py")

# name -> (import statement timed in the phase, or None for a script; argv after python)
WORKLOADS = {
    "pass": ("pass", ["-c", "pass"]),
    "boto3": ("import boto3", ["-c", "import boto3"]),
    "sympy": ("import sympy", ["-c", "import sympy"]),
    "networkx": ("import networkx", ["-c", "import networkx"]),
    "pydantic": ("from pydantic import BaseModel", ["-c", "from pydantic import BaseModel"]),
    "flask": ("import flask", ["-c", "import flask"]),
    "rich": ("import rich.console", ["-c", "import rich.console"]),
    "sqlalchemy": ("import sqlalchemy", ["-c", "import sqlalchemy"]),
    "ipython": ("from IPython import embed", ["-c", "from IPython import embed"]),
    "demo": (None, [DEMO]),
}
QUICK = ["pass", "networkx", "rich", "demo"]
# `-c pass` differs between the tools by a fraction of a millisecond in
# ~12 ms, inside the noise of 21 rounds here (one run put code-data-share at
# 1.32x of plain as a ratio of medians and 1.15x as a median of ratios; 300
# rounds: 1.10x and 1.10x). Its processes are short: it gets more rounds.
EXTRA_ROUNDS = {"pass": 10}
# Each workload's rounds run in blocks of about this many, the workloads
# taking turns block by block, so that every workload's medians draw on the
# whole run: the host's speed, and the ratios with it, move from minute to
# minute by more than one run's interval (rich's phase against the limit:
# 1.06 to 1.14 in sets of 32 rounds three minutes apart).
BLOCK_ROUNDS = 8

# The probe prints the import phase in ms and when it ended on CLOCK_MONOTONIC,
# one clock for every process: the parent times the rest, to the exit.
PHASE = ("import time\nstart = time.perf_counter()\n{statement}\n"
         "print((time.perf_counter() - start) * 1e3, time.clock_gettime(time.CLOCK_MONOTONIC))\n")

# The limit: every code object the archive holds is materialized, every
# module's location known and every directory the dump recorded listed
# before the clock starts (LIMIT_SETUP), then the phase.
LIMIT_SETUP = """
import sys, time
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import ExtensionFileLoader, SourceFileLoader
import codeshare.archive
archive = codeshare.archive.open({archive!r})
preloaded = {{name: (archive.metadata(name), archive.code(name)) for name in archive.names}}
extensions = archive.manifest["extensions"]

class PreloadedLoader(SourceFileLoader):
    def get_code(self, fullname):
        return preloaded[fullname][1]

class Preloaded:
    @staticmethod
    def find_spec(name, path=None, target=None):
        entry = preloaded.get(name)
        if entry is not None:
            origin, package = entry[0][:2]
            loader = PreloadedLoader(name, origin)
        elif name in extensions:
            origin, package = extensions[name][:2]
            loader = ExtensionFileLoader(name, origin)
        else:
            return None
        spec = ModuleSpec(name, loader, origin=origin, is_package=package)
        spec.has_location = True
        if package:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        return spec

sys.meta_path.insert(len(sys.meta_path) - 1, Preloaded)

# What is still searched for (a name not found) finds every directory the
# dump recorded already listed. (Nothing imported here that the interpreter
# has not loaded: a module imported before the clock is not timed.)
from _frozen_importlib_external import FileFinder, PathFinder
for directory in archive.manifest["directories"]:
    finder = PathFinder._path_importer_cache(directory)
    if type(finder) is FileFinder:
        finder.find_spec("-")
"""
LIMIT = LIMIT_SETUP + PHASE


def run(command, environment):
    """(wall seconds, peak RSS KiB, minor faults, stdout, exit status)."""
    read, write = os.pipe()
    start = time.perf_counter()
    pid = os.posix_spawn(command[0], command, environment,
                         file_actions=[(os.POSIX_SPAWN_DUP2, write, 1), (os.POSIX_SPAWN_CLOSE, read)])
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_maxrss, usage.ru_minflt, b"".join(chunks), os.waitstatus_to_exitcode(status)


def run_probe(command, environment):
    """(import phase ms, teardown ms) of one probe process, or None if it failed."""
    _, _, _, output, status = run(command, environment)
    exited = time.clock_gettime(time.CLOCK_MONOTONIC)
    if status != 0:
        return None
    phase, ended = map(float, output.split()[-2:])
    return phase, (exited - ended) * 1e3


def rounds(variants, runs, indices=None):
    """(round, variant) in the order to run them: a warm-up round 0, then
    `runs` rounds, every other one in reverse (`indices`: only those rounds,
    a block of them). A process starts faster or slower after some other
    than after itself (caches, clock: the second of two identical boto3
    imports is ~2% faster here), so no variant may always follow the same
    one."""
    variants = list(variants)
    for index in (range(runs + 1) if indices is None else indices):
        for variant in (variants if index % 2 == 0 else variants[::-1]):
            yield index, variant


def blocks(runs, count):
    """Rounds 0 (the warm-up) to `runs` in `count` consecutive blocks of
    nearly equal length."""
    edges = [round(part * (runs + 1) / count) for part in range(count + 1)]
    return [range(start, stop) for start, stop in zip(edges, edges[1:])]


def clean_environment(**extra):
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("CODESHARE_", "PYCDS", "PYTHON"))}
    environment.update(extra)
    return environment


def enter_dump_directory(directory):
    """Into the directory a workload's archives are dumped in, before any
    run of it (dumps, checks, timing): a `-c` program has '' (the working
    directory) first on sys.path, and from any other directory the dump's
    `stat`s no longer vouch for the path: each process lists its
    directories and checks each top-level module against the listings
    (`against.py --elsewhere` times that case)."""
    os.chdir(directory)


class Tools:
    def __init__(self, options, workload, argv):
        self.name = workload
        self.workdir = os.path.join(options.workdir, workload)
        os.makedirs(self.workdir, exist_ok=True)
        self.pythons = {"plain": options.plain, "codeshare": options.codeshare, "cds": options.cds}
        self.argv = argv
        self.archive = os.path.join(self.workdir, "codeshare.csa")
        self.cds_image = os.path.join(self.workdir, "cds.img")
        self.environments = {
            "plain": clean_environment(),
            "codeshare": clean_environment(CODESHARE_ARCHIVE=self.archive),
            "cds": clean_environment(PYCDSMODE="SHARE", PYCDSARCHIVE=self.cds_image),
        }

    def prepare(self):
        enter_dump_directory(self.workdir)
        dumped = run([self.pythons["codeshare"], "-m", "codeshare", "dump", "-o", self.archive, *self.argv],
                     clean_environment())
        if dumped[4] != 0 or not os.path.exists(self.archive):
            raise SystemExit(f"codeshare dump failed for {self.argv}")
        listing = os.path.join(self.workdir, "cds.lst")
        run([self.pythons["cds"], *self.argv], clean_environment(PYCDSMODE="TRACE", PYCDSLIST=listing))
        run([self.pythons["cds"], "-c", f"import cds.dump; cds.dump.run_dump({listing!r}, {self.cds_image!r})"],
            clean_environment())
        if not os.path.exists(self.cds_image):
            raise SystemExit(f"code-data-share dump failed for {self.argv}")

    def check_outputs(self):
        enter_dump_directory(self.workdir)
        expected = run([self.pythons["plain"], *self.argv], self.environments["plain"])
        for tool in ("codeshare", "cds"):
            got = run([self.pythons[tool], *self.argv], self.environments[tool])
            if (got[3], got[4]) != (expected[3], expected[4]):
                raise SystemExit(f"{tool}: output differs from plain for {self.argv}")
        served_output(self.pythons["codeshare"], self.argv, self.environments["codeshare"])


def served_output(python, argv, environment):
    """The output of `python argv` served from the archive `environment`
    names; exits unless every archived module it imported was served
    without a search. What is timed must be what a deployment gets: an
    archive refused with a warning would run as plain and look like no gain
    at all, and modules looked up by a normal search first (a directory
    before theirs on the path now holding their name) would time the
    searches."""
    verbose = subprocess.run([python, *argv], capture_output=True, env={**environment, "CODESHARE_VERBOSE": "1"})
    stderr = verbose.stderr.decode(errors="replace")
    summary = stderr.splitlines()[-1:]
    if (verbose.returncode != 0 or not summary or not summary[0].startswith("codeshare: served ")
            or summary[0].startswith("codeshare: served 0,")):
        raise SystemExit(f"{python} served nothing for {argv}: {stderr.strip()[-300:]}")
    searched = [line for line in stderr.splitlines() if "; the normal search found" in line]
    if searched or ", fell back 0," not in summary[0]:
        raise SystemExit(f"{python} did not serve everything as dumped for {argv}: {(searched or summary)[0]}")
    return verbose.stdout


def paired_ratio(numerators, denominators):
    """The median over rounds of numerator / denominator within a round: the
    two ran seconds apart, so a drift of the machine's speed over minutes
    (up to 2x here) cancels out, as it does not in a ratio of medians."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def median_interval(values):
    """A 95% confidence interval of the median of per-round values, free of
    any assumption on their distribution: the r-th smallest and r-th
    largest value, for the largest r that a Binomial(rounds, 1/2) count
    falls below with at most 2.5% probability (41 rounds: the 14th and
    28th; under 6 rounds none is that sure, and it is the extremes). It
    says how far this run's noise leaves the median; a drift between runs
    on other days (several hundredths here) is not in it."""
    values = sorted(values)
    count, below, r = len(values), 0.0, 0
    while r < count // 2 and below + math.comb(count, r) / 2 ** count <= 0.025:
        below += math.comb(count, r) / 2 ** count
        r += 1
    return (values[r - 1], values[count - r]) if r else (values[0], values[-1])


def paired_ratio_interval(numerators, denominators):
    """median_interval of the ratios paired_ratio takes the median of."""
    return median_interval([n / d for n, d in zip(numerators, denominators)])


def captured_shares(plain, codeshare, limit):
    """Per round, the share of what plain's phase spends over the limit's
    (finding, reading and unmarshalling) that codeshare's saves: the issue
    reads its 1.10x-the-limit target as capturing at least ~80% of it."""
    return [(p - c) / (p - l) for p, c, l in zip(plain, codeshare, limit)]


def interval_text(interval):
    return f"{interval[0]:.2f}-{interval[1]:.2f}"


def to_cds_text(codeshare):
    """codeshare / code-data-share, round by round, with its interval: three
    decimals, since `-c pass` is decided in the third."""
    low, high = codeshare["to_cds_interval"]
    return f"{codeshare['to_cds']:.3f} ({low:.3f}-{high:.3f})"


class Measurement:
    """One workload's samples, gathered a block of rounds at a time (see
    BLOCK_ROUNDS), and what they add up to."""

    def __init__(self, tools, statement, runs):
        self.tools = tools
        self.process_runs = runs * EXTRA_ROUNDS.get(tools.name, 1)
        self.phase_runs = runs
        self.process_samples = {tool: [] for tool in tools.pythons}
        self.probes = None
        if statement:
            probe = PHASE.format(statement=statement)
            self.probes = {
                "plain": ([tools.pythons["plain"], "-c", probe], tools.environments["plain"]),
                "codeshare": ([tools.pythons["codeshare"], "-c", probe], tools.environments["codeshare"]),
                "cds": ([tools.pythons["cds"], "-c", probe], tools.environments["cds"]),
                "limit": ([tools.pythons["codeshare"], "-c", LIMIT.format(archive=tools.archive, statement=statement)],
                          clean_environment()),
            }
            self.phase_samples = {name: [] for name in self.probes}

    def run_block(self, block, count):
        """The rounds of block `block` of `count`: whole processes, then import phases."""
        tools = self.tools
        enter_dump_directory(tools.workdir)
        for index, tool in rounds(tools.pythons, self.process_runs, blocks(self.process_runs, count)[block]):
            elapsed, rss, faults, _, status = run([tools.pythons[tool], *tools.argv], tools.environments[tool])
            if status != 0:
                raise SystemExit(f"{tool} failed on {tools.argv}")
            if index:  # one warm-up round
                self.process_samples[tool].append((elapsed * 1e3, rss, faults))
        if self.probes is None:
            return
        for index, name in rounds(self.probes, self.phase_runs, blocks(self.phase_runs, count)[block]):
            sample = run_probe(*self.probes[name])
            if sample is None:
                raise SystemExit(f"import phase failed: {name} {tools.argv}")
            if index:
                self.phase_samples[name].append(sample)

    def whole_process(self):
        samples = self.process_samples
        times = {tool: [s[0] for s in values] for tool, values in samples.items()}
        result = {tool: {"ms": statistics.median(times[tool]),
                         "ratio": paired_ratio(times[tool], times["plain"]),
                         "ratio_interval": paired_ratio_interval(times[tool], times["plain"]),
                         "rss_kib": statistics.median(s[1] for s in values),
                         "minor_faults": statistics.median(s[2] for s in values)}
                  for tool, values in samples.items()}
        # "Faster than code-data-share" asks for the two compared directly, round
        # by round: their intervals against plain overlap where they are close.
        result["codeshare"]["to_cds"] = paired_ratio(times["codeshare"], times["cds"])
        result["codeshare"]["to_cds_interval"] = paired_ratio_interval(times["codeshare"], times["cds"])
        return result

    def import_phase(self):
        """(median phase, median teardown, ratios), or Nones for a script."""
        if self.probes is None:
            return None, None, None
        samples = self.phase_samples
        phases = {name: [phase for phase, _ in values] for name, values in samples.items()}
        ratios = {name: paired_ratio(phases[name], phases["plain"]) for name in samples}
        if statistics.median(phases["limit"]) >= 0.5:  # not `pass`: no import to compare
            ratios["codeshare_to_limit"] = paired_ratio(phases["codeshare"], phases["limit"])
            ratios["codeshare_to_limit_interval"] = paired_ratio_interval(phases["codeshare"], phases["limit"])
            shares = captured_shares(phases["plain"], phases["codeshare"], phases["limit"])
            ratios["captured"] = statistics.median(shares)
            ratios["captured_interval"] = median_interval(shares)
        return ({name: statistics.median(values) for name, values in phases.items()},
                {name: statistics.median(teardown for _, teardown in values) for name, values in samples.items()},
                ratios)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [name for name in results if name != "pass"]
    phased = [name for name in names if results[name]["import_phase"]]
    figure, (whole, phase) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [len(names), len(phased)]})
    width = 0.38
    for offset, (tool, label) in enumerate((("codeshare", "codeshare"), ("cds", "code-data-share 0.1.0"))):
        values = [results[name]["process"][tool]["ratio"] for name in names]
        whole.bar([index + (offset - 0.5) * width for index in range(len(names))], values, width, label=label)
    whole.set_title("Whole process / plain CPython")
    whole.set_xticks(range(len(names)), names, rotation=30)
    width = 0.27
    for offset, (key, label) in enumerate((("codeshare", "codeshare"), ("cds", "code-data-share 0.1.0"),
                                            ("limit", "limit (nothing searched, read, unmarshalled)"))):
        values = [results[name]["phase_ratios"][key] for name in phased]
        phase.bar([index + (offset - 1) * width for index in range(len(phased))], values, width, label=label)
    phase.set_title("Import phase / plain CPython")
    phase.set_xticks(range(len(phased)), phased, rotation=30)
    for axes in (whole, phase):
        axes.axhline(1.0, color="black", linewidth=0.8)
        axes.set_ylim(0, 1.35)
        axes.set_ylabel("time relative to plain (lower is faster)")
    whole.legend(loc="upper right")
    phase.legend(loc="upper right", fontsize=8)
    figure.suptitle("Start-up, medians of each interleaved round's ratio")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def limit_ratio(ratios):
    """codeshare / limit and its interval, where there is an import to
    compare (not for `pass`)."""
    if "codeshare_to_limit" not in ratios:
        return "—"
    return f"{ratios['codeshare_to_limit']:.2f} ({interval_text(ratios['codeshare_to_limit_interval'])})"


def captured_text(ratios):
    """The share of plain's cost over the limit that codeshare saves, in %."""
    if "captured" not in ratios:
        return "—"
    low, high = ratios["captured_interval"]
    return f"{ratios['captured'] * 100:.0f}% ({low * 100:.0f}-{high * 100:.0f})"


def cpu_model():
    """The CPU's model name as the kernel reports it (the machine type, where
    it gives none): one VM kind may run on different hosts, and a table
    must say which it came from."""
    with open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.machine()


def markdown(report):
    """The results as a Markdown table, for the README."""
    runs = report["runs"]
    extra = ", ".join(f"`{name}`: {runs * factor}" for name, factor in EXTRA_ROUNDS.items())
    lines = [
        f"Measured {report['date'][:10]} on {report['machine']['cpus']} vCPUs ({report['machine']['cpu']}), "
        f"{report['machine']['platform']}, "
        f"Python {report['machine']['python'].split()[0]}; medians of {runs} interleaved runs "
        f"({extra} for the whole process; ratios: medians of each round's ratio, with the 95% confidence "
        f"interval of that median in parentheses where a target applies).",
        "",
        "| workload | plain | codeshare | code-data-share | codeshare / code-data-share | import phase: plain | codeshare "
        "| cds | limit | codeshare / limit | captured | teardown ms plain / cs / cds | peak RSS MiB plain / cs / cds "
        "| minor faults plain / cs / cds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in report["results"].items():
        p, c, d = (result["process"][tool] for tool in ("plain", "codeshare", "cds"))
        phase, teardown, ratios = result["import_phase"], result["teardown"], result["phase_ratios"]
        phase_cells = (f"{phase['plain']:.1f} ms | {phase['codeshare']:.1f} ms | {phase['cds']:.1f} ms | "
                       f"{phase['limit']:.1f} ms | {limit_ratio(ratios)} | {captured_text(ratios)} | "
                       f"{teardown['plain']:.1f} / {teardown['codeshare']:.1f} / {teardown['cds']:.1f}"
                       if phase else "— | — | — | — | — | — | —")
        lines.append(f"| {name} | {p['ms']:.1f} ms | {c['ms']:.1f} ms ({c['ratio']:.2f}x, "
                     f"{interval_text(c['ratio_interval'])}) | "
                     f"{d['ms']:.1f} ms ({d['ratio']:.2f}x) | {to_cds_text(c)} | {phase_cells} | "
                     f"{p['rss_kib'] / 1024:.1f} / {c['rss_kib'] / 1024:.1f} / {d['rss_kib'] / 1024:.1f} | "
                     f"{p['minor_faults']:,.0f} / {c['minor_faults']:,.0f} / {d['minor_faults']:,.0f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for tool in ("plain", "codeshare", "cds"):
        parser.add_argument(f"--{tool}", required=True, help=f"python of the {tool} venv")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}, few runs")
    parser.add_argument("--json")
    parser.add_argument("--chart")
    parser.add_argument("--markdown", help="write the table as Markdown here too")
    options = parser.parse_args()
    runs = min(options.runs, 5) if options.quick else options.runs
    names = QUICK if options.quick else list(WORKLOADS)
    results = {}
    header = (f"{'workload':11} {'plain':>8} {'codeshare (95%)':>25} {'code-data-share':>17} {'cs/cds (95%)':>21} |"
              f" {'import phase: plain':>19} {'codeshare':>9} {'cds':>7} {'limit':>7} {'cs/limit (95%)':>16}"
              f" {'captured (95%)':>14} |"
              f" {'teardown ms p/cs/cds':>20} | {'peak RSS MiB p/cs/cds':>22} | {'faults p/cs/cds':>17}")
    tools = {}
    for name in names:
        tools[name] = Tools(options, name, WORKLOADS[name][1])
        tools[name].prepare()
        tools[name].check_outputs()
    measurements = {name: Measurement(tools[name], WORKLOADS[name][0], runs) for name in names}
    count = math.ceil(runs / BLOCK_ROUNDS)
    for block in range(count):
        for name in names:
            measurements[name].run_block(block, count)
        print(f"block {block + 1} of {count} timed", file=sys.stderr, flush=True)
    print(header)
    for name in names:
        measurement = measurements[name]
        process = measurement.whole_process()
        phase, teardown, ratios = measurement.import_phase()
        results[name] = {"argv": tools[name].argv, "rounds": measurement.process_runs, "process": process,
                         "import_phase": phase, "teardown": teardown, "phase_ratios": ratios}
        p, c, d = (process[tool] for tool in ("plain", "codeshare", "cds"))
        phase_text = (f" {phase['plain']:17.1f}ms {phase['codeshare']:7.1f}ms {phase['cds']:5.1f}ms "
                      f"{phase['limit']:5.1f}ms {limit_ratio(ratios):>16} {captured_text(ratios):>14} |"
                      f" {teardown['plain']:6.1f}/{teardown['codeshare']:6.1f}/{teardown['cds']:6.1f}"
                      if phase else f" {'(script: whole process only)':>81} | {'':>20}")
        print(f"{name:11} {p['ms']:6.1f}ms {c['ms']:7.1f}ms {c['ratio']:5.2f}x {interval_text(c['ratio_interval'])} "
              f"{d['ms']:8.1f}ms {d['ratio']:5.2f}x {to_cds_text(c):>21} |{phase_text} |"
              f" {p['rss_kib'] / 1024:6.1f}/{c['rss_kib'] / 1024:6.1f}/{d['rss_kib'] / 1024:6.1f} |"
              f" {p['minor_faults']:5.0f}/{c['minor_faults']:5.0f}/{d['minor_faults']:5.0f}", flush=True)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "cpu": cpu_model(),
                    "platform": platform.platform(), "python": sys.version},
        "runs": runs,
        "results": results,
    }
    if options.json:
        with open(options.json, "w") as file:
            json.dump(report, file, indent=2)
    if options.chart:
        chart(results, options.chart)
    if options.markdown:
        with open(options.markdown, "w") as file:
            file.write(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
