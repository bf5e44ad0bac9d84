"""Shared helpers: every test drives codeshare through real subprocesses."""
import os
import shutil
import subprocess
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
SUPPORT = os.path.join(TESTS, "support")
FIXTURES = os.path.join(TESTS, "fixtures")

# Every served run in the suite makes the run-once pages it gives back fault
# on access: a wrong release crashes the test instead of reading zeros.
os.environ["CODESHARE_RELEASE"] = "protect"


class Completed:
    def __init__(self, result):
        self.returncode = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr


def run_python(args, *, python=None, env=None, check=True, cwd=None, timeout=600):
    """Runs the interpreter in a fresh process; a crash (signal) always fails."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    result = subprocess.run([python or sys.executable, *args], capture_output=True, text=True,
                            env=full_env, cwd=cwd, timeout=timeout)
    assert result.returncode >= 0, (
        f"crashed with signal {-result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-3000:]}")
    if check:
        assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    return Completed(result)


@pytest.fixture
def run():
    return run_python


def preload_library(directory, name, source):
    """Compiles C `source` into directory/name.so, for LD_PRELOAD (cc or clang)."""
    (directory / f"{name}.c").write_text(source)
    compiler = shutil.which("cc") or shutil.which("clang")
    subprocess.run([compiler, "-shared", "-fPIC", "-o", directory / f"{name}.so", directory / f"{name}.c", "-ldl"],
                   check=True)
    return str(directory / f"{name}.so")
