"""The command line: usage errors are one clear line and exit status 2; and
what the archive API may write over."""
import errno
import os
import re
import resource
import signal
import subprocess
import sys

import pytest

from conftest import preload_library, run_python
from importing import assert_same_run, run_both, served


def test_usage_errors(tmp_path):
    for arguments, message in (
        (["dump", "main.py"], "-o OUTPUT is required"),
        (["dump", "-o", str(tmp_path / "a.csa")], "nothing to run: give a SCRIPT"),
        (["dump", "-o", str(tmp_path / "a.csa"), "--bogus"], "unknown option --bogus"),
        ([], "no command given"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["info"], "info takes one archive path"),
    ):
        result = run_python(["-m", "codeshare", *arguments], check=False)
        assert result.returncode == 2, arguments
        assert result.stderr.startswith(f"codeshare: {message}"), result.stderr
        assert "python -m codeshare dump -o OUT" in result.stderr, "with the usage"
    assert not (tmp_path / "a.csa").exists()
    for arguments in (["--help"], ["-h"], ["dump", "--help"], ["dump", "-o", str(tmp_path / "a.csa"), "-h", "main.py"],
                      ["info", "--help"], ["verify", "-h"]):
        asked = run_python(["-m", "codeshare", *arguments], cwd=tmp_path)
        assert (asked.returncode, asked.stderr) == (0, ""), arguments
        assert "python -m codeshare dump -o OUT" in asked.stdout
    assert not (tmp_path / "a.csa").exists()
    # After the program, an option is the program's.
    (tmp_path / "main.py").write_text("import sys\nprint(sys.argv[1:])\n")
    dumped = run_python(["-m", "codeshare", "dump", "-o", str(tmp_path / "a.csa"), "main.py", "--help"], cwd=tmp_path)
    assert dumped.stdout == "['--help']\n" and (tmp_path / "a.csa").exists()


@pytest.mark.parametrize("level", ["-O", "-OO"])
def test_the_commands_run_under_every_optimization_level(tmp_path, level):
    # -OO strips docstrings: the usage had been __main__'s, and every command
    # under -OO ended in an AttributeError before it began.
    (tmp_path / "main.py").write_text('"""The program."""\nimport json\nprint(json.dumps([__doc__, __debug__]))\n')
    archive = tmp_path / "app.csa"
    run_python([level, "-m", "codeshare", "dump", "-o", str(archive), "main.py"], cwd=tmp_path)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=tmp_path, python_flags=[level])
    assert plain.stdout == ('[null, false]\n' if level == "-OO" else '["The program.", false]\n')
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr)
    for command in (["info", str(archive)], ["verify", str(archive)], ["--help"]):
        assert run_python([level, "-m", "codeshare", *command]).stderr == ""
    assert "python -m codeshare dump -o OUT" in run_python([level, "-m", "codeshare"], check=False).stderr


def test_a_dump_that_cannot_write_its_archive_stops_before_the_program_runs(tmp_path):
    (tmp_path / "main.py").write_text("open('ran', 'w').close()\n")
    (tmp_path / "taken").mkdir()
    os.mkfifo(tmp_path / "fifo")   # as /dev/null, which the archive would replace
    for output, reason in (("missing/a.csa", f"no directory {tmp_path / 'missing'}"),
                           ("taken", "it is a directory"), ("fifo", "it is not a regular file")):
        result = run_python(["-m", "codeshare", "dump", "-o", output, "main.py"], cwd=tmp_path, check=False)
        assert (result.returncode, result.stderr) == (2, f"codeshare: cannot write {output}: {reason}\n")
    assert not (tmp_path / "ran").exists()
    assert (tmp_path / "fifo").is_fifo()


def test_a_dump_writes_the_file_its_path_names_through_a_symbolic_link(tmp_path):
    # In 'link/../app.csa' the kernel takes '..' from where the link leads,
    # as `ls` and CODESHARE_ARCHIVE do.
    (tmp_path / "real" / "inner").mkdir(parents=True)
    os.symlink(tmp_path / "real" / "inner", tmp_path / "link")
    (tmp_path / "main.py").write_text("import json\n")
    output = os.path.join("link", "..", "app.csa")
    run_python(["-m", "codeshare", "dump", "-o", output, "main.py"], cwd=tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["link", "main.py", "real"]
    assert sorted(os.listdir(tmp_path / "real")) == ["app.csa", "inner"]
    verbose = run_python(["main.py"], cwd=tmp_path, env={"CODESHARE_ARCHIVE": output, "CODESHARE_VERBOSE": "1"})
    assert "codeshare: served json\n" in verbose.stderr


def test_a_dump_of_a_program_python_cannot_find_leaves_the_archive_it_would_replace(tmp_path):
    # A mistyped script or module: python says so and exits; the dump wrote
    # an archive of the start-up's modules over the one at -o.
    (tmp_path / "main.py").write_text("import json\n")
    archive = tmp_path / "app.csa"
    run_python(["-m", "codeshare", "dump", "-o", "app.csa", "main.py"], cwd=tmp_path)
    dumped = archive.read_bytes()
    for program, status, error in ((["mian.py"], 2, "can't open file"), (["-m", "mian"], 1, "No module named mian"),
                                   (["-m", "json.nosuch"], 1, "No module named json.nosuch")):
        plain = run_python(program, cwd=tmp_path, check=False)
        for output in ("app.csa", "new.csa"):
            result = run_python(["-m", "codeshare", "dump", "-o", output, *program], cwd=tmp_path, check=False)
            assert (result.returncode, result.stdout, result.stderr) == (status, "", plain.stderr)
            assert error in result.stderr
    assert archive.read_bytes() == dumped
    assert sorted(path.name for path in tmp_path.iterdir()) == ["app.csa", "main.py"]


def test_a_dump_whose_archive_write_fails_says_so_in_one_line_and_leaves_nothing(tmp_path):
    # The writer writes the file a segment at a time (Swift, pwrite): a
    # failed write must be an OSError, the archive and its temporary file
    # gone, the program's exit status kept. A file-size limit fails the write
    # as a full disk would (EFBIG, with SIGXFSZ ignored).
    (tmp_path / "main.py").write_text("import argparse, decimal, email.message, json\nprint('ran')\n")

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    result = subprocess.run([sys.executable, "-m", "codeshare", "dump", "-o", "app.csa", "main.py"], cwd=tmp_path,
                            capture_output=True, text=True, preexec_fn=limit_file_size, timeout=600)
    assert (result.returncode, result.stdout) == (0, "ran\n")
    reason = f"[Errno {errno.EFBIG}] {os.strerror(errno.EFBIG)}"
    assert result.stderr == f"codeshare: could not write {tmp_path / 'app.csa'}: {reason}\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["main.py"]


@pytest.mark.parametrize(("headroom_kib", "flags", "reason"), [
    (64, [], "MemoryError"),   # in Python, before the writer: a MemoryError's str is empty
    # Enough for the dump's compile of each source (6.5 MB here), not for the
    # writer (11 MB): Embedded Swift's arrays trap.
    (8704, [], "the writer trapped (out of memory, or a codeshare bug)"),
    # The program's handler of the trap (faulthandler's) is not the child's.
    (8704, ["-X", "faulthandler"], "the writer trapped (out of memory, or a codeshare bug)"),
])
def test_a_dump_that_runs_out_of_memory_as_it_writes_says_so_and_the_program_keeps_its_exit(tmp_path, headroom_kib,
                                                                                            flags, reason):
    # The program runs, then leaves the dump little address space to write
    # its archive in. The writer used to trap in the program's own process
    # (SIGILL, exit status 132, its buffered output lost, a temporary file
    # left); it runs in a child now.
    (tmp_path / "main.py").write_text(
        "import argparse, asyncio, decimal, email.parser, json, logging, unittest, xml.dom.minidom\n"
        "import resource\n"
        "with open('/proc/self/statm') as statm:\n"
        "    size = int(statm.read().split()[0]) * resource.getpagesize()\n"
        f"resource.setrlimit(resource.RLIMIT_AS, (size + {headroom_kib << 10}, resource.RLIM_INFINITY))\n"
        "print('ran')\n")
    result = subprocess.run([sys.executable, *flags, "-m", "codeshare", "dump", "-o", "app.csa", "main.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert (result.returncode, result.stdout) == (0, "ran\n")
    assert result.stderr == f"codeshare: could not write {tmp_path / 'app.csa'}: {reason}\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["main.py"]


def dump_and_verify(tmp_path, env=None):
    """Dumps tmp_path/main.py to tmp_path/app.csa, checks that the archive
    would serve every module it holds, and answers the dump's (stdout, stderr)."""
    dumped = run_python(["-m", "codeshare", "dump", "-o", str(tmp_path / "app.csa"), str(tmp_path / "main.py")],
                        env=env)
    verified = run_python(["-m", "codeshare", "verify", str(tmp_path / "app.csa")])
    assert re.fullmatch(r"([1-9]\d*) of \1 modules would be served; 0 stale, missing, shadowed or malformed\n",
                        verified.stdout)
    return dumped.stdout, dumped.stderr


def test_the_writers_child_is_invisible_to_the_program(tmp_path):
    # The program's os.register_at_fork hooks do not run for it (a C fork,
    # not os.fork). A program that ignores SIGCHLD has the child reaped for
    # it (waitpid: ECHILD): the child's report must still tell that it wrote.
    (tmp_path / "main.py").write_text(
        "import json, os, signal\n"
        "os.register_at_fork(before=lambda: print('before'), after_in_parent=lambda: print('parent'),\n"
        "                    after_in_child=lambda: print('child'))\n"
        "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n")
    assert dump_and_verify(tmp_path) == ("", "")


def test_a_program_that_handles_sigchld_never_sees_the_writer(tmp_path):
    # Its handler would run for a child it never started, and one that reaps
    # its own children raises at ECHILD: the writer runs in the process.
    (tmp_path / "main.py").write_text(
        "import json, os, signal\n"
        "def reap(number, frame):\n"
        "    print('SIGCHLD')\n"
        "    os.waitpid(-1, os.WNOHANG)\n"
        "signal.signal(signal.SIGCHLD, reap)\n")
    assert dump_and_verify(tmp_path) == ("", "")


def test_a_dump_where_no_child_can_be_forked_writes_its_archive_in_its_own_process(tmp_path):
    # fork fails under a process limit, or under strict overcommit for a
    # large program: the writer then runs where it ran before it had a child.
    nofork = preload_library(tmp_path, "nofork", "#include <errno.h>\n#include <unistd.h>\n"
                                                  "pid_t fork(void) { errno = EAGAIN; return -1; }\n")
    (tmp_path / "main.py").write_text("import json, os\ntry:\n    os.fork()\nexcept BlockingIOError:\n    print('no fork')\n")
    assert dump_and_verify(tmp_path, env={"LD_PRELOAD": nofork}) == ("no fork\n", "")


def test_the_api_does_not_replace_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = run_python(["-c", f"import codeshare.archive; codeshare.archive.write({str(fifo)!r}, "
                               "[('m', compile('x = 1', 'm.py', 'exec'), None)])"], check=False)
    assert result.returncode == 1
    assert result.stderr.endswith(f"OSError: {fifo} is not a regular file, and the archive would replace it\n")
    assert fifo.is_fifo()


@pytest.mark.parametrize(("entry", "error"), [
    ("('good', compile('x = 1', 'good.py', 'exec'), None), "
     "('listy', compile('x = 1', 'listy.py', 'exec').replace(co_consts=([], None)), None)",
     "codeshare.archive.ArchiveError: cannot archive a constant of this type in module listy"),
    ("('bad\\udc80name', compile('x = 1', 'm.py', 'exec'), None)",
     "codeshare.archive.ArchiveError: the writer raised UnicodeEncodeError: "
     "'utf-8' codec can't encode character '\\udc80' in position 3: surrogates not allowed"),
])
def test_the_api_names_what_it_could_not_write_and_leaves_nothing(tmp_path, entry, error):
    # The writer runs in a child: what went wrong there comes back in its report.
    result = run_python(["-c", f"import codeshare.archive; codeshare.archive.write('app.csa', [{entry}])"],
                        check=False, cwd=tmp_path)
    assert (result.returncode, result.stderr.splitlines()[-1]) == (1, error)
    assert list(tmp_path.iterdir()) == []


def test_info_and_verify_refuse_a_bad_archive(tmp_path):
    bad = tmp_path / "bad.csa"
    bad.write_bytes(b"not an archive" * 100)
    for command in ("info", "verify"):
        result = run_python(["-m", "codeshare", command, str(bad)], check=False)
        assert result.returncode == 1
        assert result.stderr == f"codeshare: {bad}: not a codeshare archive (bad magic)\n"


def test_info_and_verify_of_an_archive_written_by_the_api(tmp_path):
    archive = tmp_path / "library.csa"
    run_python(["-c", f"import codeshare.archive; codeshare.archive.write({str(archive)!r}, "
                      "[('m', compile('x = 1', 'm.py', 'exec'), None)])"])
    info = run_python(["-m", "codeshare", "info", str(archive)])
    assert "modules:      1 from source, 0 extension-module locations" in info.stdout
    verify = run_python(["-m", "codeshare", "verify", str(archive)], check=False)
    assert verify.returncode == 1
    assert verify.stderr == (f"codeshare: {archive}: not written by `python -m codeshare dump` "
                             "(no import manifest)\n")


def test_info_names_the_program_dumped(tmp_path):
    (tmp_path / "main.py").write_text("import json\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__main__.py").write_text("import json\n")
    for program, shown in ((["main.py", "x"], "main.py"), (["-m", "app"], "-m app"), (["-c", "import json"], "-c")):
        archive = tmp_path / "a.csa"
        run_python(["-m", "codeshare", "dump", "-o", str(archive), *program], cwd=tmp_path)
        info = run_python(["-m", "codeshare", "info", str(archive)])
        assert f"\ndumped for:   {shown}\n" in info.stdout
    # --import alone runs no program: no run of one starts the thread early.
    run_python(["-m", "codeshare", "dump", "-o", str(archive), "--import", "json"], cwd=tmp_path)
    assert "dumped for" not in run_python(["-m", "codeshare", "info", str(archive)]).stdout
    # An archive written through the API may hold anything there.
    run_python(["-c", f"import codeshare.archive; codeshare.archive.write({str(archive)!r}, "
                      "[('m', compile('x = 1', 'm.py', 'exec'), None)], {'program': [1]})"])
    assert "dumped for" not in run_python(["-m", "codeshare", "info", str(archive)]).stdout


def test_info_into_a_closed_pipe_ends_quietly(tmp_path):
    archive = tmp_path / "library.csa"
    run_python(["-c", f"import codeshare.archive; codeshare.archive.write({str(archive)!r}, "
                      "[('m', compile('x = 1', 'm.py', 'exec'), None)])"])
    # `info ... | head -1` once head has gone: every write fails with EPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "codeshare", "info", str(archive)],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert result.stderr == ""
