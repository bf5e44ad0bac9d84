"""Exact-round-trip driver, run in subprocesses by test_roundtrip.py.

    roundtrip.py write ARCHIVE REFERENCE DIR...   compile every .py under DIRs,
        archive the code, and save marshal.dumps of each as the reference
    roundtrip.py check ARCHIVE REFERENCE          load every module from the
        archive and compare it with marshal.loads of its reference
"""
import marshal
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import codeshare.archive  # noqa: E402
from codecompare import differences  # noqa: E402


def sources(directories):
    for top in directories:
        for directory, subdirectories, files in os.walk(top):
            subdirectories.sort()
            for file in sorted(files):
                if file.endswith(".py"):
                    yield os.path.join(directory, file)


def write(archive_path, reference_path, directories):
    warnings.simplefilter("ignore")
    entries, references = [], {}
    for path in sources(directories):
        try:
            with open(path, "rb") as file:
                code = compile(file.read(), path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, UnicodeDecodeError):
            continue  # the few files that do not compile (test data, py2 code)
        entries.append((path, code, {"source": path}))
        references[path] = marshal.dumps(code)
    codeshare.archive.write(archive_path, entries)
    with open(reference_path, "wb") as file:
        marshal.dump(references, file)
    print(f"wrote {len(entries)} modules")


def check(archive_path, reference_path):
    with open(reference_path, "rb") as file:
        references = marshal.load(file)
    archive = codeshare.archive.open(archive_path)
    assert sorted(archive.names) == sorted(references), "module names differ"
    problems = []
    for name in archive.names:
        assert archive.metadata(name) == {"source": name}
        problems.extend(f"{name}: {problem}"
                        for problem in differences(archive.code(name), marshal.loads(references[name])))
    for problem in problems[:50]:
        print(problem)
    print(f"checked {len(archive.names)} modules, {len(problems)} differences")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        check(sys.argv[2], sys.argv[3])
