"""Helpers for the import tests: write a program, dump it, run it plain and
from the archive, and compare."""
import functools
import importlib.util
import os
import re
import shutil
import sys
import time

from conftest import SUPPORT, run_python


def make_app(directory, files):
    """Writes {relative path: text} under `directory`, plus snapshot.py."""
    for relative, text in files.items():
        path = os.path.join(directory, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(path, mode) as file:
            file.write(text)
    shutil.copyfile(os.path.join(SUPPORT, "snapshot.py"), os.path.join(directory, "snapshot.py"))
    return str(directory)


def backdate_bytecode(app, module):
    """Writes the .pyc of `module` in `app` and makes it older than a dump by
    more than the clock's lag: the dump then archives the code the module
    ran, a load of that .pyc, where it reads a .pyc written as it ran again."""
    run_python(["-m", "py_compile", f"{module}.py"], cwd=app)
    cached = importlib.util.cache_from_source(os.path.join(app, f"{module}.py"))
    os.utime(cached, ns=(time.time_ns() - 10**10,) * 2)


def dump(archive, target, *, cwd, env=None, check=True):
    return run_python(["-m", "codeshare", "dump", "-o", str(archive), *target], cwd=cwd, env=env, check=check)


def archived_names(archive):
    """The names of the modules an archive holds, in its order."""
    listed = run_python(["-c", "import sys, codeshare.archive as a; print(*a.open(sys.argv[1]).names)", str(archive)])
    return listed.stdout.split()


def run_both(target, archive, *, cwd, env=None, python_flags=(), timeout=600):
    """(plain, archived, verbose) runs of the same command."""
    base = dict(env or {})
    base.pop("CODESHARE_ARCHIVE", None)
    plain = run_python([*python_flags, *target], cwd=cwd, env=base, check=False, timeout=timeout)
    archived = run_python([*python_flags, *target], cwd=cwd, env={**base, "CODESHARE_ARCHIVE": str(archive)},
                          check=False, timeout=timeout)
    verbose = run_python([*python_flags, *target], cwd=cwd,
                         env={**base, "CODESHARE_ARCHIVE": str(archive), "CODESHARE_VERBOSE": "1"}, check=False,
                         timeout=timeout)
    return plain, archived, verbose


def served(verbose_stderr):
    return set(re.findall(r"^codeshare: served (\S+)$", verbose_stderr, re.M))


@functools.cache
def startup_modules():
    """Modules the interpreter imports before any .pth file runs."""
    import ast
    result = run_python(["-S", "-c", "import sys; print(list(sys.modules))"])
    return set(ast.literal_eval(result.stdout))


def source_modules(stdout):
    """Names of the modules a run loaded from .py files after start-up, from
    its snapshot: those codeshare can serve."""
    import json
    line = next(line for line in stdout.splitlines() if line.startswith("SNAPSHOT "))
    modules = json.loads(line[len("SNAPSHOT "):])["modules"]
    return {name for name, attributes in modules.items()
            if (attributes["origin"] or "").endswith(".py") and name != "__main__"} - startup_modules()


def without_snapshot(stdout):
    return "".join(line for line in stdout.splitlines(True) if not line.startswith("SNAPSHOT "))


def _addresses_masked(text):
    # Object addresses differ between any two runs of a program.
    return re.sub(r" at 0x[0-9a-f]+", " at 0x?", text)


def assert_same_run(plain, archived):
    assert archived.returncode == plain.returncode
    assert _addresses_masked(archived.stdout) == _addresses_masked(plain.stdout)
    assert _addresses_masked(archived.stderr) == _addresses_masked(plain.stderr)

