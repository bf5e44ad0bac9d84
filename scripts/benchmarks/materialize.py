"""Materializing a module's code from an archive vs `marshal.loads` of its
.pyc bytes, for the standard library's largest modules.

Each measurement is one fresh process that times one call (perf_counter and
minor page faults around it); the two methods alternate for every module and
repetition, and the report gives medians and their ratios. Also reports the
archive size against the .pyc bytes and against the memory unmarshalling
allocates (tracemalloc).

    python materialize.py [--modules 50] [--runs 11] [--json out.json]
"""
import argparse
import json
import marshal
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import tracemalloc

import codeshare.archive

PROBE = r"""
import resource, sys, time
method, name, path = sys.argv[1:4]
if method == "marshal":
    import marshal
    with open(path, "rb") as f:
        data = f.read()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    marshal.loads(data)
else:
    import codeshare.archive
    archive = codeshare.archive.open(path)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    archive.code(name)
elapsed = time.perf_counter() - start
print(elapsed * 1e6, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def largest_stdlib_modules(count):
    stdlib = sysconfig.get_paths()["stdlib"]
    found = []
    for directory, subdirectories, files in os.walk(stdlib):
        subdirectories[:] = [d for d in subdirectories
                             if d not in ("test", "tests", "site-packages", "__pycache__", "idle_test")]
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                try:
                    with open(path, "rb") as source:
                        code = compile(source.read(), path, "exec", dont_inherit=True)
                except (SyntaxError, ValueError):
                    continue
                name = os.path.relpath(path, stdlib)[:-3].replace(os.sep, ".")
                found.append((len(marshal.dumps(code)), name, code))
    found.sort(key=lambda item: -item[0])
    return found[:count]


def probe(method, name, path):
    output = subprocess.run([sys.executable, "-c", PROBE, method, name, path],
                            check=True, capture_output=True, text=True).stdout.split()
    return float(output[0]), int(output[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", type=int, default=50)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--json", help="write the results here too")
    options = parser.parse_args()

    modules = largest_stdlib_modules(options.modules)
    workdir = tempfile.mkdtemp(prefix="codeshare-bench-")
    archive_path = os.path.join(workdir, "stdlib.csa")
    codeshare.archive.write(archive_path, [(name, code, None) for _, name, code in modules])
    pyc_paths = {}
    for _, name, code in modules:
        pyc_paths[name] = os.path.join(workdir, name + ".pyc-body")
        with open(pyc_paths[name], "wb") as file:
            file.write(marshal.dumps(code))

    tracemalloc.start()
    kept = [marshal.loads(marshal.dumps(code)) for _, _, code in modules]
    unmarshalled_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept

    rows = []
    print(f"{'module':32} {'marshal µs':>10} {'archive µs':>10} {'ratio':>6} {'faults m/a':>11}")
    for _, name, _ in modules:
        marshal_runs, archive_runs = [], []
        for _ in range(options.runs):
            marshal_runs.append(probe("marshal", name, pyc_paths[name]))
            archive_runs.append(probe("archive", name, archive_path))
        row = {
            "module": name,
            "marshal_us": statistics.median(t for t, _ in marshal_runs),
            "archive_us": statistics.median(t for t, _ in archive_runs),
            "marshal_faults": statistics.median(f for _, f in marshal_runs),
            "archive_faults": statistics.median(f for _, f in archive_runs),
        }
        row["ratio"] = row["marshal_us"] / row["archive_us"]
        rows.append(row)
        print(f"{name:32} {row['marshal_us']:10.0f} {row['archive_us']:10.0f} {row['ratio']:6.2f} "
              f"{row['marshal_faults']:5.0f}/{row['archive_faults']:<5.0f}")

    pyc_bytes = sum(os.path.getsize(path) for path in pyc_paths.values())
    archive_bytes = os.path.getsize(archive_path)
    summary = {
        "modules": len(rows),
        "runs": options.runs,
        "median_speedup": statistics.median(row["ratio"] for row in rows),
        "archive_bytes": archive_bytes,
        "pyc_bytes": pyc_bytes,
        "unmarshalled_bytes": unmarshalled_bytes,
        "python": sys.version,
    }
    print(f"\nmedian speed-up (marshal time / archive time): {summary['median_speedup']:.2f}x over {len(rows)} modules")
    print(f"archive {archive_bytes / 1e6:.2f} MB = {archive_bytes / pyc_bytes:.2f}x the .pyc bytes "
          f"({pyc_bytes / 1e6:.2f} MB), {archive_bytes / unmarshalled_bytes:.2f}x what unmarshalling "
          f"allocates ({unmarshalled_bytes / 1e6:.2f} MB)")
    if options.json:
        with open(options.json, "w") as file:
            json.dump({"summary": summary, "rows": rows}, file, indent=2)


if __name__ == "__main__":
    main()
