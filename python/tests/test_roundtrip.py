"""Acceptance: every module of the standard library and of this venv's
site-packages, archived and loaded in a fresh process, is exactly what
marshal.loads gives, whatever the hash seed of either process."""
import os
import sysconfig

import pytest

from conftest import SUPPORT

DRIVER = os.path.join(SUPPORT, "roundtrip.py")


@pytest.fixture(scope="module")
def stdlib_archive(tmp_path_factory):
    from conftest import run_python
    directory = tmp_path_factory.mktemp("roundtrip")
    archive, reference = str(directory / "all.csa"), str(directory / "reference.marshal")
    paths = sysconfig.get_paths()
    written = run_python([DRIVER, "write", archive, reference, paths["stdlib"], paths["purelib"]],
                         env={"PYTHONHASHSEED": "0"})
    count = int(written.stdout.split()[1])
    assert count > 2500, written.stdout  # the stdlib alone has ~1800 modules
    return archive, reference


@pytest.mark.parametrize("seed", ["12345", "random"])
def test_every_module_round_trips_exactly(stdlib_archive, run, seed):
    archive, reference = stdlib_archive
    checked = run([DRIVER, "check", archive, reference], env={"PYTHONHASHSEED": seed})
    assert checked.stdout.rstrip().endswith(" 0 differences"), checked.stdout[-5000:]
