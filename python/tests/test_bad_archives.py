"""Acceptance: a bad archive never crashes the process; it is refused with
one clear line, whatever the damage, and a good one is never misread."""
import os
import shutil
import sys
import sysconfig

import pytest

from conftest import SUPPORT
from importing import archived_names, dump, make_app, run_both

sys.path.insert(0, SUPPORT)
from archive_layout import index_entry, reseal  # noqa: E402

ABUSE = os.path.join(SUPPORT, "abuse.py")
MODULES = ["json/__init__.py", "json/decoder.py", "json/encoder.py", "json/scanner.py",
           "textwrap.py", "string.py"]
WRITE = """
import sys, codeshare.archive
entries = []
for path in sys.argv[2:]:
    with open(path, "rb") as file:
        entries.append((path, compile(file.read(), path, "exec"), {"source": path}))
codeshare.archive.write(sys.argv[1], entries)
"""


def write_archive(run, path, modules, python=None, flags=()):
    stdlib = sysconfig.get_paths()["stdlib"]
    run([*flags, "-c", WRITE, str(path), *(os.path.join(stdlib, m) for m in modules)], python=python)
    return str(path)


@pytest.fixture
def archives(tmp_path, run):
    good = write_archive(run, tmp_path / "good.csa", MODULES)
    other = write_archive(run, tmp_path / "other.csa", ["argparse.py", "typing.py"])
    return good, other


def reason_of(run, path, python=None):
    return run([ABUSE, "open", str(path)], python=python).stdout.strip()


def test_damaged_archives_are_refused_or_read_exactly(archives, tmp_path, run):
    good, other = archives
    result = run([ABUSE, "variants", good, other, str(tmp_path), "20261122", "1200"])
    summary = result.stdout.splitlines()[-1]
    assert "FAILED" not in result.stdout, result.stdout[-3000:]
    assert summary.startswith("SUMMARY"), result.stdout[-3000:]
    # Every kind of damage met its own refusal.
    for reason in ("empty archive file", "truncated or resized archive file",
                   "corrupted module data (checksum mismatch)",
                   "corrupted module index (checksum mismatch)", "corrupted header (checksum mismatch)"):
        assert reason in summary, summary


def test_damage_behind_valid_checksums_is_refused_or_loaded_never_a_crash(archives, tmp_path, run):
    """Damage no corruption makes (every checksum made to hold again): the
    reader's own checks of the counts, lengths, states and refs it walks
    refuse it, or the module loads. A huge count whose size overflowed, a
    string to intern at padding and a str that is not compact had each
    stopped the process."""
    good, _ = archives
    result = run([ABUSE, "resealed", good, str(tmp_path), "20261208", "3000"])
    summary = result.stdout.splitlines()[-1]
    assert "FAILED" not in result.stdout, result.stdout[-3000:]
    assert summary.startswith("SUMMARY 3000"), result.stdout[-3000:]
    assert "corrupted module data (reference out of bounds)" in summary and "loaded" in summary, summary


@pytest.mark.parametrize("entry", ["metadata", "name", "manifest"])
def test_an_index_entry_that_does_not_decode_refuses_the_archive_or_that_module(tmp_path, run, entry):
    """A module's metadata, a module's name or the manifest whose bytes do
    not decode, every checksum made to hold: the program runs as plain. The
    metadata makes that one module fall back (it had raised ValueError out
    of the program's import); a name or the manifest refuses the archive
    in one line (they had raised UnicodeDecodeError and ValueError out of
    the hook, which site.py printed as a traceback)."""
    app = make_app(tmp_path, {"main.py": "import json, textwrap\nprint(textwrap.shorten(json.dumps([1, 2]), 40))\n"})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    data = bytearray(archive.read_bytes())
    start, _ = index_entry(data, entry, archived_names(archive).index("json.decoder"))
    data[start] = 0xFF   # no UTF-8 byte, no marshal type
    reseal(data)
    archive.write_bytes(data)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    reason = "corrupted module index (a name or metadata that does not decode)"
    assert (archived.returncode, archived.stdout) == (0, plain.stdout), archived.stderr
    if entry == "metadata":
        assert archived.stderr == plain.stderr
        assert f"codeshare: fell back on json.decoder: {reason}" in verbose.stderr, verbose.stderr
        verified = run(["-m", "codeshare", "verify", str(archive)], cwd=app, check=False)
        assert verified.returncode == 1 and f"malformed json.decoder: {reason}" in verified.stdout, verified.stdout
    else:
        assert archived.stderr == f"codeshare: not using the archive: {archive}: {reason}\n" + plain.stderr


def test_header_refusals_name_the_reason(archives, tmp_path, run):
    good, _ = archives
    with open(good, "rb") as file:
        data = bytearray(file.read())
    cases = [
        ("not a codeshare archive (bad magic)", bytes(b"\x7fELF") + data[4:]),
        ("written by another codeshare archive format (schema version)", data[:8] + b"\x63" + data[9:]),
        ("empty archive file", b""),
        ("truncated or resized archive file", data[:100]),
        ("truncated or resized archive file", data[:5]),
        # Shorter than a header but no archive's start: a path to another file.
        ("not a codeshare archive (bad magic)", b"junk\n"),
    ]
    for expected, content in cases:
        path = tmp_path / "case.csa"
        path.write_bytes(content)
        assert reason_of(run, path) == f"ArchiveError: {path}: {expected}"
    assert reason_of(run, tmp_path / "missing.csa") == (
        f"ArchiveError: {tmp_path / 'missing.csa'}: cannot read the archive file: No such file or directory")
    assert reason_of(run, good) == "ok"


def test_archives_from_other_flags_are_refused_as_foreign(tmp_path, run):
    optimized = write_archive(run, tmp_path / "optimized.csa", MODULES, flags=["-O"])
    assert reason_of(run, optimized) == f"ForeignArchiveError: {optimized}: written under another -O optimization level"
    no_ranges = write_archive(run, tmp_path / "noranges.csa", MODULES, flags=["-X", "no_debug_ranges"])
    assert reason_of(run, no_ranges) == (
        f"ForeignArchiveError: {no_ranges}: written with another -X no_debug_ranges setting")
    plain = write_archive(run, tmp_path / "plain.csa", MODULES)
    assert run(["-O", ABUSE, "open", plain]).stdout.strip() == (
        f"ForeignArchiveError: {plain}: written under another -O optimization level")


REFUSAL_CLASSES = """
import pickle, sys
from codeshare.archive import ArchiveError, ForeignArchiveError, open
class Mine(ForeignArchiveError):
    pass
try:
    raise Mine("mine")
except ArchiveError as error:
    caught = error
try:
    open(sys.argv[1])
except ArchiveError as error:
    refused = error
print(ArchiveError.__mro__[1:], ForeignArchiveError.__bases__, ArchiveError.__module__, ArchiveError.__qualname__)
print(repr(caught), caught.args, type(refused).__name__, pickle.loads(pickle.dumps(refused)).args == refused.args)
"""


def test_refusals_are_exceptions_a_program_can_catch_subclass_and_pickle(tmp_path, run):
    missing = tmp_path / "missing.csa"
    lines = run(["-c", REFUSAL_CLASSES, str(missing)]).stdout.splitlines()
    assert lines == [
        "(<class 'Exception'>, <class 'BaseException'>, <class 'object'>) (<class 'codeshare.archive.ArchiveError'>,) "
        "codeshare.archive ArchiveError",
        "Mine('mine') ('mine',) ArchiveError True",
    ]


DEBIAN_PYTHON = os.environ.get("CODESHARE_DEBIAN_PYTHON")


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3.11"), reason="no Debian python3.11 on this machine")
def test_archive_of_the_other_interpreter_build_is_refused(tmp_path, run):
    assert DEBIAN_PYTHON, "scripts/test sets CODESHARE_DEBIAN_PYTHON to a venv of /usr/bin/python3.11"
    assert os.path.realpath(DEBIAN_PYTHON) != os.path.realpath(sys.executable)
    debian = write_archive(run, tmp_path / "debian.csa", MODULES, python=DEBIAN_PYTHON)
    ours = write_archive(run, tmp_path / "ours.csa", MODULES)
    mismatch = "written by another Python interpreter build (interpreter mismatch)"
    assert reason_of(run, debian) == f"ForeignArchiveError: {debian}: {mismatch}"
    assert reason_of(run, ours, python=DEBIAN_PYTHON) == f"ForeignArchiveError: {ours}: {mismatch}"
    assert reason_of(run, debian, python=DEBIAN_PYTHON) == "ok"


def test_archive_changed_on_disk_while_in_use(archives, tmp_path, run):
    good, other = archives
    result = run([ABUSE, "in-use", good, other, str(tmp_path)])
    outcomes = result.stdout.strip().split(" | ")
    replaced = "error: the archive file was replaced or changed since it was opened"
    assert outcomes[:2] == [replaced] * 2, outcomes
    assert all(outcome.startswith("error: corrupted module data") for outcome in outcomes[2:4]), outcomes
    assert outcomes[4:] == [replaced] * len(MODULES), outcomes
