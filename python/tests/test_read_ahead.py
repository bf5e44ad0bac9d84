"""Acceptance: the read-ahead thread, which prepares a program's modules in
import order on another core, changes nothing but the timing: a child forked
while it holds a module still imports it, Python threads importing at once
get the same modules, and CODESHARE_READAHEAD=off serves the same program."""
import os
import re
import resource
import signal
import subprocess
import sys

import pytest

from importing import assert_same_run, dump, make_app, run_both, served
from conftest import run_python

# Enough of the standard library that the thread is still busy when the
# program starts (a few MB of archive).
HEAVY = ["asyncio", "email.mime.multipart", "http.client", "json", "unittest", "xml.dom.minidom",
         "argparse", "logging.handlers", "urllib.request", "zipfile"]

FORKING = f"""
import os, sys
HEAVY = {HEAVY!r}
# Children forked at once and then at intervals: the first ones while the
# read-ahead thread is mid-way through a module they import.
for round in range(6):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        import importlib
        modules = [importlib.import_module(name) for name in HEAVY]
        print("child", round, sorted(len(vars(module)) > 0 for module in modules))
        sys.stdout.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status))
    sum(range(20000 * round))
import asyncio, json, unittest
print("parent", asyncio.run(asyncio.sleep(0, "done")), json.dumps([1]), unittest.TestCase.__name__)
"""

FORKING_AFTER_EACH_IMPORT = """
import os
MANY = ["asyncio", "email.mime.multipart", "http.client", "json", "unittest", "xml.dom.minidom", "argparse",
        "logging.handlers", "urllib.request", "zipfile", "decimal", "fractions", "difflib", "pydoc", "tarfile",
        "ftplib", "smtplib", "imaplib", "csv", "sqlite3", "pickle", "statistics"]
# Children forked in a burst after each import, while the read-ahead
# thread reads the modules to come: each lists its descriptors.
for name in MANY:
    __import__(name)
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            os.write(1, (" ".join(sorted(os.listdir("/proc/self/fd"))) + "\\n").encode())
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
"""

OPENING_AFTER_EACH_IMPORT = """
import os
numbers = []
for name in ["json", "email.parser", "http.client", "xml.etree.ElementTree", "zipfile", "sqlite3", "argparse",
             "logging.handlers", "asyncio", "unittest", "decimal", "difflib", "pydoc", "tarfile", "csv",
             "urllib.request", "ftplib", "smtplib", "imaplib", "mailbox", "configparser", "inspect", "dataclasses"]:
    __import__(name)
    # A file the program opens while the read-ahead thread reads the modules to come.
    descriptor = os.open(__file__, os.O_RDONLY)
    numbers.append(descriptor)
    os.close(descriptor)
print(numbers)
"""

THREADS = f"""
import importlib, threading
HEAVY = {HEAVY!r}
results = {{}}
def load(name):
    results[name] = importlib.import_module(name).__name__
threads = [threading.Thread(target=load, args=(name,)) for name in reversed(HEAVY)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sorted(results.items()))
"""


def test_children_forked_while_reading_ahead_import_normally(tmp_path):
    directory = make_app(tmp_path, {"main.py": FORKING})
    dump(tmp_path / "app.csa", ["main.py"], cwd=directory)
    # A child left waiting for a part nobody prepares would hang.
    plain, archived, verbose = run_both(["main.py"], tmp_path / "app.csa", cwd=directory, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert_same_run(plain, archived)
    assert archived.stdout.count("child exit 0") == 6
    assert {"asyncio", "json", "unittest"} <= served(verbose.stderr)


def test_children_forked_while_reading_ahead_have_the_descriptors_plain_children_have(tmp_path):
    directory = make_app(tmp_path, {"main.py": FORKING_AFTER_EACH_IMPORT})
    dump(tmp_path / "app.csa", ["main.py"], cwd=directory)
    # A child forked while the thread read kept its descriptor (in ~3 of 4
    # runs before children closed it): three runs.
    for _ in range(3):
        plain, archived, verbose = run_both(["main.py"], tmp_path / "app.csa", cwd=directory, timeout=120)
        assert plain.returncode == archived.returncode == 0, archived.stderr
        assert sorted(archived.stdout.splitlines()) == sorted(plain.stdout.splitlines())
    assert {"asyncio", "json", "unittest"} <= served(verbose.stderr)


def test_files_opened_while_reading_ahead_get_the_numbers_they_get_under_plain_python(tmp_path):
    directory = make_app(tmp_path, {"main.py": OPENING_AFTER_EACH_IMPORT})
    dump(tmp_path / "app.csa", ["main.py"], cwd=directory)
    # With the thread's descriptor at the lowest free number, a file opened
    # while it read got the next one (this test failed 9 of 10 times): three runs.
    for _ in range(3):
        plain, archived, verbose = run_both(["main.py"], tmp_path / "app.csa", cwd=directory)
        assert plain.returncode == 0, plain.stderr
        assert_same_run(plain, archived)
    assert {"json", "unittest", "dataclasses"} <= served(verbose.stderr)


def test_threads_importing_at_once_while_reading_ahead(tmp_path):
    directory = make_app(tmp_path, {"main.py": THREADS})
    dump(tmp_path / "app.csa", ["main.py"], cwd=directory)
    plain, archived, verbose = run_both(["main.py"], tmp_path / "app.csa", cwd=directory)
    assert plain.returncode == 0, plain.stderr
    assert_same_run(plain, archived)
    # Lines printed by several threads at once may run together.
    messages = verbose.stderr.replace("\n", "").split("codeshare: ")
    assert set(HEAVY) <= {message.split()[1] for message in messages if message.startswith("served ")}


def test_read_ahead_off_serves_the_same(tmp_path):
    directory = make_app(tmp_path, {"main.py": "import json, argparse\nprint(json.dumps({'a': 1}))\n"})
    dump(tmp_path / "app.csa", ["main.py"], cwd=directory)
    plain, archived, verbose = run_both(["main.py"], tmp_path / "app.csa", cwd=directory,
                                        env={"CODESHARE_READAHEAD": "off"})
    assert_same_run(plain, archived)
    assert {"json", "argparse"} <= served(verbose.stderr)
    wrong = run_python(["main.py"], cwd=directory,
                       env={"CODESHARE_ARCHIVE": str(tmp_path / "app.csa"), "CODESHARE_READAHEAD": "maybe"})
    assert wrong.stdout == plain.stdout
    assert wrong.stderr == "codeshare: CODESHARE_READAHEAD='maybe' is not 'on' or 'off'; reading ahead\n"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
def test_read_ahead_needs_a_big_program_archive_and_a_spare_core(tmp_path):
    directory = make_app(tmp_path, {"main.py": f"import {', '.join(HEAVY)}\n", "small.py": "import json\n"})
    dump(tmp_path / "app.csa", ["main.py"], cwd=directory)
    dump(tmp_path / "small.csa", ["small.py"], cwd=directory)
    probe = (
        "import os, sys, codeshare.archive as archive\n"
        "program, small = sys.argv[1:]\n"
        "with archive.open(program) as a:\n"
        "    archive.write(program + '.collection', [(name, a.code(name), {}) for name in a.names])\n"
        "print(archive.open(program).read_ahead(), archive.open(program + '.collection').read_ahead(),\n"
        "      archive.open(small).read_ahead())\n"
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "print(archive.open(program).read_ahead())\n")
    result = run_python(["-c", probe, str(tmp_path / "app.csa"), str(tmp_path / "small.csa")], cwd=directory)
    assert result.stdout == "True False False\nFalse\n"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
def test_the_read_ahead_thread_is_placed_on_another_cpu_not_pinned(tmp_path):
    # It starts with an affinity that leaves out the importing thread's CPU
    # (so that it runs at once, not when the scheduler rebalances), and then
    # takes the affinity of the thread that started it.
    listing = (
        "import json, os, time\n"
        "def masks():\n"
        "    return {task: [line for line in open(f'/proc/self/task/{task}/status') if line.startswith('Cpus_allowed')]\n"
        "            for task in os.listdir('/proc/self/task')}\n"
        "# The thread, a window ahead of the imports, waits for them; once it runs\n"
        "# (within milliseconds) its affinity is the program's; it waits 2 s at most.\n"
        "deadline = time.monotonic() + 1\n"
        "while len(set(map(str, masks().values()))) > 1 and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "found = masks()\n"
        f"import {', '.join(HEAVY)}\n"
        "print(len(found), len(set(map(str, found.values()))), found[str(os.getpid())] == masks()[str(os.getpid())])\n")
    directory = make_app(tmp_path, {"main.py": listing})
    dump(tmp_path / "app.csa", ["main.py"], cwd=directory)
    result = run_python(["main.py"], cwd=directory, env={"CODESHARE_ARCHIVE": str(tmp_path / "app.csa")})
    assert result.returncode == 0, result.stderr
    # Two threads, one affinity: the program's own, which the thread left as it was.
    assert result.stdout == "2 1 True\n"


# Waits up to 1 s for a second thread before its first import of a module
# the archive holds (os and time are the interpreter's own).
WAITING = ("import os, time\n"
           "deadline = time.monotonic() + 1\n"
           "while len(os.listdir('/proc/self/task')) < 2 and time.monotonic() < deadline:\n"
           "    time.sleep(0.01)\n"
           "print(len(os.listdir('/proc/self/task')))\n"
           f"import {', '.join(HEAVY)}\n")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
@pytest.mark.parametrize("program", [["main.py"], ["-c", WAITING]], ids=["script", "code"])
def test_the_read_ahead_thread_starts_with_the_program_dumped(tmp_path, program):
    # In a run of the program the archive was dumped for, the thread starts
    # as the hook opens the archive, so that the program's first modules are
    # ready by its first import; in another program, at that import.
    directory = make_app(tmp_path, {"main.py": WAITING, "other.py": WAITING})
    dump(tmp_path / "app.csa", program, cwd=directory)
    plain, archived, verbose = run_both(program, tmp_path / "app.csa", cwd=directory)
    assert plain.stdout == "1\n"
    assert archived.returncode == 0, archived.stderr
    assert archived.stdout == "2\n"
    assert set(HEAVY) <= served(verbose.stderr)
    other = run_python(["other.py"], cwd=directory, env={"CODESHARE_ARCHIVE": str(tmp_path / "app.csa")})
    assert other.stdout == "1\n"


def test_the_program_exiting_while_the_thread_reads_ahead_exits_as_plain(tmp_path):
    # The program the archive was dumped for, run so that it imports
    # nothing of it, exits while the thread (started with the interpreter)
    # is mid-way through a module: the interpreter does not wait for it, and
    # nothing the thread still reads is freed under it.
    program = ("import os, sys\n"
               f"if os.environ.get('HEAVY'): import {', '.join(HEAVY)}\n"
               "if sys.argv[1:] == ['fork']: os.fork() or os._exit(0)\n"
               "print(sys.argv[1:])\n")
    directory = make_app(tmp_path, {"main.py": program})
    dump(tmp_path / "app.csa", ["main.py"], cwd=directory, env={"HEAVY": "1"})
    for arguments in ([], ["fork"]):
        plain = run_python(["main.py", *arguments], cwd=directory)
        for _ in range(5):
            archived = run_python(["main.py", *arguments], cwd=directory,
                                  env={"CODESHARE_ARCHIVE": str(tmp_path / "app.csa")})
            assert (archived.stdout, archived.stderr) == (plain.stdout, plain.stderr)


def test_the_archive_holds_modules_in_the_order_a_run_asks_for_them(tmp_path):
    # A package's body imports its submodules: the package is asked for
    # first and finishes last. The read-ahead thread keeps a window ahead of
    # the module last asked for, in archive order, so the archive must list
    # them as asked for, not as finished (sys.modules' order).
    directory = make_app(tmp_path, {
        "main.py": "import re\nimport pkg\nprint(pkg.VALUE)\n",
        "pkg/__init__.py": "from . import first, second\nVALUE = first.A + second.B\n",
        "pkg/first.py": "A = 1\n",
        "pkg/second.py": "from . import third\nB = third.C\n",
        "pkg/third.py": "import json\nC = 2\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=directory)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=directory)
    assert_same_run(plain, archived)
    program = ["pkg", "pkg.first", "pkg.second", "pkg.third", "json", "json.decoder"]
    asked = [name for name in re.findall(r"^codeshare: served (\S+)$", verbose.stderr, re.M) if name in program]
    assert asked == program
    names = run_python(["-c", f"import codeshare.archive; print(*codeshare.archive.open({str(archive)!r}).names)"])
    assert [name for name in names.stdout.split() if name in program] == program


MANY_IMPORTS = """
import sys
for name in ["asyncio", "email.mime.multipart", "http.client", "json", "unittest", "xml.dom.minidom", "argparse",
             "logging.handlers", "urllib.request", "zipfile", "decimal", "fractions", "difflib", "pydoc", "tarfile",
             "ftplib", "smtplib", "imaplib", "csv", "sqlite3", "pickle", "statistics"]:
    __import__(name)
print(len(sys.modules) > 100)
"""


def test_running_out_of_memory_is_a_memory_error_never_a_crash(tmp_path):
    # Under an address-space limit (ulimit -v) Embedded Swift's allocate
    # returned NULL and the read-ahead thread wrote through it, or its
    # arrays trapped: SIGSEGV or SIGILL in 9 runs of 10 at 22 and at 38 MiB
    # here, where plain Python raises MemoryError or runs. Out of memory,
    # CPython 3.11 itself may abort (SIGABRT: "Cannot recover from
    # MemoryErrors") or loop for ever unwinding an exception whose
    # position it cannot allocate; those are left alone.
    app = make_app(tmp_path / "app", {"main.py": MANY_IMPORTS})
    dump(os.path.join(app, "app.csa"), ["main.py"], cwd=app)
    crashes = []
    for megabytes in (22, 30, 38) * 3:
        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))
        try:
            result = subprocess.run([sys.executable, "main.py"], cwd=app, capture_output=True, preexec_fn=limit,
                                    env={**os.environ, "CODESHARE_ARCHIVE": "app.csa"}, timeout=20)
        except subprocess.TimeoutExpired:
            continue
        if result.returncode in (-signal.SIGSEGV, -signal.SIGILL, -signal.SIGBUS):
            crashes.append((megabytes, signal.Signals(-result.returncode).name))
    assert not crashes


def test_an_archive_opened_when_memory_runs_out_is_refused_never_a_crash(tmp_path):
    # Opening an archive made Swift arrays (the tables, the reader's own)
    # and class instances, which trap when malloc fails: SIGILL in a band
    # of limits just above the least that plain `python -c pass` runs in
    # (11.92-12.04 MiB here), where plain ran. Out of memory the archive is
    # refused with one line, and the program runs or raises MemoryError.
    app = make_app(tmp_path / "app", {"main.py": MANY_IMPORTS})
    dump(os.path.join(app, "app.csa"), ["main.py"], cwd=app)

    def run(kibibytes, environment):
        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (kibibytes << 10, kibibytes << 10))
        return subprocess.run([sys.executable, "-c", "pass"], cwd=app, capture_output=True, preexec_fn=limit,
                              env=environment, timeout=10)

    plain = {key: value for key, value in os.environ.items() if not key.startswith("CODESHARE_")}
    least = next(kibibytes for kibibytes in range(8 << 10, 64 << 10, 256) if run(kibibytes, plain).returncode == 0)
    crashes = []
    for kibibytes in range(least - 256, least + (2 << 10), 16):
        try:
            result = run(kibibytes, {**plain, "CODESHARE_ARCHIVE": "app.csa"})
        except subprocess.TimeoutExpired:
            continue
        if result.returncode in (-signal.SIGSEGV, -signal.SIGILL, -signal.SIGBUS):
            crashes.append((kibibytes, signal.Signals(-result.returncode).name))
    assert not crashes

