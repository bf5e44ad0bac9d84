"""What codeshare costs a process that does not use it, and what loading
the extension costs: interleaved whole-process timings, medians, the median
of each round's difference, and the peak RSS of each (ru_maxrss of the child).

    python overhead.py --with-codeshare VENV_PYTHON --without VENV_PYTHON [--runs N] [--json OUT]

  hook: `python -c pass` in the codeshare venv with CODESHARE_ARCHIVE unset,
        its codeshare.pth present against set aside (the same venv, so only
        the hook differs); and against a venv without codeshare at all;
        and inside the process, site.main() timed in -S processes, with
        the floors of any .pth hook (an empty file, a line importing posix)
        in its place;
  extension: `python -c "import codeshare._core"` against `python -c pass`,
        both in the codeshare venv; against `import codeshare` (the package
        alone: the sys.path search any site-packages import pays); and
        `codeshare.load_extension()` against `import codeshare`, which
        isolates loading the Swift extension itself, as the hook loads it
        (from its file, without the search of the package's directory that
        `import codeshare._core` makes and a served start does not). Both
        also timed inside the process (perf_counter_ns around the statement
        alone, in fresh processes): a whole process's reading of a few
        tenths of a millisecond moves by +-0.15 ms from run to run here.
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from workloads import rounds


def one(command, environment):
    start = time.perf_counter()
    pid = os.posix_spawn(command[0], command, environment)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed")
    return elapsed, usage.ru_maxrss


def paired_delta_ms(first, second):
    """The median over rounds of second - first within a round (they ran
    milliseconds apart: the machine's drift over minutes cancels out)."""
    return statistics.median(b - a for (a, _), (b, _) in zip(first, second)) * 1e3


def interleaved(a, b, runs, environment):
    results = ([], [])
    for index, slot in rounds((0, 1), runs + 1):
        elapsed, rss = one((a, b)[slot], environment)
        if index >= 2:  # warm-up pairs
            results[slot].append((elapsed, rss))
    return [{"ms": statistics.median(t for t, _ in r) * 1e3,
             "rss_kib": statistics.median(m for _, m in r)} for r in results], paired_delta_ms(*results)


# .pth files that run the least a hook can: none, and one line that imports
# what a test of the environment needs.
FLOOR_HOOKS = {"empty .pth": "", "`import posix` .pth": "import posix\n"}
# site.py's work alone, the .pth files' included: the interpreter started
# with -S runs it under the clock.
SITE_MAIN = "import site, time\nstart = time.perf_counter_ns()\nsite.main()\nprint(time.perf_counter_ns() - start)"
INSIDE = "import codeshare, time\nstart = time.perf_counter_ns()\n{}\nprint(time.perf_counter_ns() - start)"


def probe_ms(command, environment):
    """The time a probe process (SITE_MAIN, INSIDE) prints, in ms."""
    return int(subprocess.run(command, env=environment, capture_output=True, text=True, check=True).stdout) / 1e6


def timed_inside(python, statements, runs, environment):
    """Each statement timed inside fresh processes, after `import codeshare`,
    the processes interleaved: the median of each, in ms."""
    samples = [[] for _ in statements]
    for index, slot in rounds(range(len(statements)), runs + 1):
        sample = probe_ms([python, "-c", INSIDE.format(statements[slot])], environment)
        if index >= 2:  # warm-up rounds
            samples[slot].append(sample)
    return [statistics.median(sample) for sample in samples]


def hook_path(python, environment):
    """The codeshare.pth of the venv whose interpreter is `python`."""
    probe = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, env=environment, check=True)
    return os.path.join(probe.stdout.strip(), "codeshare.pth")


@contextlib.contextmanager
def set_aside(hook, stand_in=None):
    """The venv without its codeshare.pth meanwhile, or with a .pth of the
    text `stand_in` in its place. Renaming it moves site-packages' mtime,
    which archives dumped in this venv recorded: it is put back, or every
    later served start would list site-packages to check it."""
    site_packages = os.path.dirname(hook)
    times = os.stat(site_packages)
    os.rename(hook, hook + ".aside")
    try:
        if stand_in is not None:
            with open(hook, "w") as file:
                file.write(stand_in)
        yield
    finally:
        os.rename(hook + ".aside", hook)
        os.utime(site_packages, ns=(times.st_atime_ns, times.st_mtime_ns))


def hook_cost(options, environment):
    """The disabled hook alone: the same venv with its .pth set aside, then
    a venv without codeshare."""
    command = [options.with_codeshare, "-c", "pass"]
    hook = hook_path(options.with_codeshare, environment)
    _, over_plain_venv_ms = interleaved([options.without, "-c", "pass"], command, options.runs, environment)
    samples = ([], [])   # without, with the hook
    for index, present in rounds((False, True), options.runs + 1):
        with contextlib.nullcontext() if present else set_aside(hook):
            sample = one(command, environment)
        if index >= 2:  # warm-up pairs
            samples[present].append(sample)
    without_ms = statistics.median(t for t, _ in samples[0]) * 1e3
    with_ms = statistics.median(t for t, _ in samples[1]) * 1e3
    # site.main() timed in -S processes: without the file, with each floor
    # in its place, and with it.
    inside = {label: [] for label in ("without", *FLOOR_HOOKS, "codeshare.pth")}
    for index, label in rounds(inside, options.runs + 1):
        with contextlib.nullcontext() if label == "codeshare.pth" else set_aside(hook, FLOOR_HOOKS.get(label)):
            sample = probe_ms([options.with_codeshare, "-S", "-c", SITE_MAIN], environment)
        if index >= 2:  # warm-up rounds
            inside[label].append(sample)
    return {"with_ms": with_ms, "without_ms": without_ms, "delta_ms": paired_delta_ms(*samples),
            "delta_rss_kib": statistics.median(m for _, m in samples[1]) - statistics.median(m for _, m in samples[0]),
            "over_plain_venv_ms": over_plain_venv_ms,
            "site_main_ms": {label: statistics.median(times) for label, times in inside.items()},
            "site_main_over_without_ms": {label: statistics.median(b - a for a, b in zip(inside["without"], times))
                                          for label, times in inside.items() if label != "without"}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-codeshare", required=True)
    parser.add_argument("--without", required=True)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json")
    options = parser.parse_args()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CODESHARE_")}
    report = {}
    report["hook"] = hook_cost(options, environment)
    extension_alone = [options.with_codeshare, "-c", "import codeshare._core"]
    extension, extension_delta_ms = interleaved([options.with_codeshare, "-c", "pass"], extension_alone,
                                                options.runs, environment)
    package_alone = [options.with_codeshare, "-c", "import codeshare"]
    package, package_delta_ms = interleaved(package_alone, extension_alone, options.runs, environment)
    hook_way = [options.with_codeshare, "-c", "import codeshare; codeshare.load_extension()"]
    loaded, loaded_delta_ms = interleaved(package_alone, hook_way, options.runs, environment)
    searched_ms, loaded_ms = timed_inside(options.with_codeshare, ("import codeshare._core", "codeshare.load_extension()"),
                                          options.runs, environment)
    report["extension"] = {"pass_ms": extension[0]["ms"], "import_ms": extension[1]["ms"],
                           "delta_ms": extension_delta_ms,
                           "delta_rss_kib": extension[1]["rss_kib"] - extension[0]["rss_kib"],
                           "over_package_ms": package_delta_ms,
                           "over_package_rss_kib": package[1]["rss_kib"] - package[0]["rss_kib"],
                           "as_the_hook_loads_it_ms": loaded_delta_ms,
                           "as_the_hook_loads_it_rss_kib": loaded[1]["rss_kib"] - loaded[0]["rss_kib"],
                           "inside_process_ms": {"import codeshare._core": searched_ms,
                                                 "codeshare.load_extension()": loaded_ms}}
    hook = report["hook"]
    print(f"disabled hook:    python -c pass {hook['with_ms']:.2f} ms with codeshare.pth, "
          f"{hook['delta_ms']:+.3f} ms, {hook['delta_rss_kib']:+.0f} KiB peak RSS over the same venv without it; "
          f"{hook['over_plain_venv_ms']:+.3f} ms over a venv without codeshare "
          f"(medians of {options.runs} rounds' differences)")
    print(f"                  inside the process, site.main() over the same without the file: " +
          ", ".join(f"{label} {delta:+.3f} ms" for label, delta in hook["site_main_over_without_ms"].items()) +
          f" ({hook['site_main_ms']['without']:.3f} ms without)")
    print(f"extension import: {report['extension']['delta_ms']:+.3f} ms, "
          f"{report['extension']['delta_rss_kib']:+.0f} KiB peak RSS over python -c pass; "
          f"{report['extension']['over_package_ms']:+.3f} ms, {report['extension']['over_package_rss_kib']:+.0f} KiB "
          f"over importing the codeshare package alone; {report['extension']['as_the_hook_loads_it_ms']:+.3f} ms, "
          f"{report['extension']['as_the_hook_loads_it_rss_kib']:+.0f} KiB loaded as the hook loads it")
    print(f"                  inside the process (medians of {options.runs}): {loaded_ms:.3f} ms loaded as the hook "
          f"loads it, {searched_ms:.3f} ms by import codeshare._core")
    if options.json:
        with open(options.json, "w") as file:
            json.dump(report, file, indent=2)


if __name__ == "__main__":
    sys.exit(main())
