"""Acceptance: the start-up hook with bad archives, concurrent dumps and
readers, read-only archives of another user, -E and -I; and the hook's cost
when off."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import run_python
from importing import archived_names, assert_same_run, dump, make_app, run_both, served

# The descriptors first: the hook holds the archive open while it reads its
# own modules, and the program must find none of that.
MAIN = ("import os\nprint(sorted(os.listdir('/proc/self/fd')))\n"
        "import json, textwrap, argparse, sys\nprint(json.dumps([1, 2]))\nsys.exit(7)\n")


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path / "app", {"main.py": MAIN})


def debian_archive(tmp_path, app):
    python = os.environ.get("CODESHARE_DEBIAN_PYTHON")
    if not python:
        return None
    path = tmp_path / "debian.csa"
    run_python(["-m", "codeshare", "dump", "-o", str(path), "main.py"], python=python, cwd=app, check=False)
    return path


def test_bad_archives_warn_once_and_change_nothing(tmp_path, app):
    good = tmp_path / "good.csa"
    dump(good, ["main.py"], cwd=app, check=False)
    data = good.read_bytes()
    cases = {
        "missing": None,
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "random": os.urandom(len(data)),
        "header only": data[:256],
    }
    paths = {}
    for label, content in cases.items():
        path = tmp_path / f"{label}.csa"
        if content is not None:
            path.write_bytes(content)
        paths[label] = path
    # Opening a FIFO for reading waited for a writer: the process hung.
    paths["fifo"] = tmp_path / "fifo.csa"
    os.mkfifo(paths["fifo"])
    paths["directory"] = tmp_path / "directory.csa"
    paths["directory"].mkdir()
    plain = run_python(["main.py"], cwd=app, check=False)
    assert plain.returncode == 7
    for label, path in paths.items():
        archived = run_python(["main.py"], cwd=app, env={"CODESHARE_ARCHIVE": str(path)}, check=False, timeout=60)
        assert archived.returncode == plain.returncode and archived.stdout == plain.stdout, label
        warning = archived.stderr[len(plain.stderr):] if archived.stderr.startswith(plain.stderr) else archived.stderr
        assert warning.startswith(f"codeshare: not using the archive: {path}: ") and warning.count("\n") == 1, (label, archived.stderr)
        if label in ("fifo", "directory"):
            assert warning.endswith(": not a regular file\n"), warning


TRACES = "import site, sys\nprint(sorted(sys.modules))\nprint(sorted(vars(site)))\n"


def test_the_environment_chooses_no_archive_under_ignore_environment_and_isolated_mode(tmp_path, app):
    # An archive is code to run: -E and -I, which make the interpreter
    # ignore PYTHONPATH, make codeshare ignore CODESHARE_ARCHIVE, without a
    # trace a program could see (it found `codeshare` in sys.modules).
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app, check=False)
    with open(os.path.join(app, "traces.py"), "w") as file:
        file.write(TRACES)
    for flag in ("-E", "-I"):
        for program in ("main.py", "traces.py"):
            plain, archived, verbose = run_both([program], archive, cwd=app, python_flags=[flag])
            assert_same_run(plain, archived)
            assert verbose.stderr == plain.stderr, verbose.stderr
    assert "json" in served(run_both(["main.py"], archive, cwd=app)[2].stderr)


LEFT_BEHIND = """import os, site, sys
print(sorted(name for name in sys.modules if name.split(".")[0] == "codeshare"))
print(sorted(entry for entry in sys.path_importer_cache if os.path.basename(entry) == "codeshare"))
print([type(finder).__name__ for finder in sys.meta_path if "PathFinder" not in repr(finder)][-1:])
print(sorted(vars(site)))
"""


def test_a_served_program_finds_nothing_of_codeshare_but_its_finder(tmp_path, app):
    # The modules the hook imported, and the finder of its package's
    # directory that importing them cached, are gone once it has run; the
    # site module has what it has under plain Python (it had a mark that
    # kept site.py from running the hook twice).
    with open(os.path.join(app, "left.py"), "w") as file:
        file.write(LEFT_BEHIND)
    archive = tmp_path / "left.csa"
    dump(archive, ["left.py"], cwd=app)
    plain = run_python(["left.py"], cwd=app).stdout.splitlines()
    result = run_python(["left.py"], cwd=app, env={"CODESHARE_ARCHIVE": str(archive)}).stdout.splitlines()
    assert result[:3] == ["[]", "[]", "['ArchiveFinder']"], result
    assert result[3] == plain[3]


# Under -X dev, loading an extension module looks up the "ascii" codec,
# whose module the codec registry then keeps: the hook's extension does
# so first, and json's (_json) does under plain Python.
MODULES = """import sys
import json
import codecs, encodings.ascii
print(sorted(sys.modules))
print(codecs.lookup("ascii").incrementalencoder is encodings.ascii.IncrementalEncoder)
"""


@pytest.mark.parametrize("flags", [[], ["-X", "dev"]])
def test_a_served_program_has_the_modules_plain_python_gives_it(tmp_path, app, flags):
    with open(os.path.join(app, "modules.py"), "w") as file:
        file.write(MODULES)
    archive = tmp_path / "modules.csa"
    dumped = run_python([*flags, "-m", "codeshare", "dump", "-o", str(archive), "modules.py"], cwd=app)
    plain, archived, verbose = run_both(["modules.py"], archive, cwd=app, python_flags=flags)
    assert plain.stdout.endswith("\nTrue\n"), plain.stdout
    assert dumped.stdout == plain.stdout
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr)


def test_the_hook_imports_its_package_once_in_a_process(tmp_path, app):
    # site.py runs a venv's .pth files twice. Where the hook served nothing
    # (an empty CODESHARE_ARCHIVE, -E), the second pass imported the
    # package again: 0.8 M instructions more than one import.
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app, check=False)
    for flags, value in (([], ""), (["-E"], str(archive)), ([], str(archive))):
        result = run_python([*flags, "-X", "importtime", "-c", "pass"], cwd=app, env={"CODESHARE_ARCHIVE": value})
        imports = [line for line in result.stderr.splitlines() if line.rpartition("|")[2].strip() == "codeshare"]
        assert len(imports) == 1, (flags, value, result.stderr)


def test_a_program_that_runs_the_hook_again_keeps_one_finder(tmp_path, app):
    # site.addsitedir() of the site directory runs its .pth files again.
    program = ("import site, sys\nsite.addsitedir(site.getsitepackages()[0])\n"
               "print([getattr(finder, '__name__', type(finder).__name__) for finder in sys.meta_path])\n" + MAIN)
    with open(os.path.join(app, "again.py"), "w") as file:
        file.write(program)
    archive = tmp_path / "app.csa"
    dump(archive, ["again.py"], cwd=app, check=False)
    plain, archived, verbose = run_both(["again.py"], archive, cwd=app)
    assert plain.returncode == 7 and "'PathFinder'" in plain.stdout
    assert archived.stdout == plain.stdout.replace("'PathFinder'", "'ArchiveFinder', 'PathFinder'")
    assert archived.stderr == plain.stderr
    assert "codeshare: served json" in verbose.stderr, verbose.stderr


def test_an_empty_archive_variable_leaves_no_trace(app):
    with open(os.path.join(app, "traces.py"), "w") as file:
        file.write(TRACES)
    plain, empty, verbose = run_both(["traces.py"], "", cwd=app)
    assert_same_run(plain, empty)
    assert verbose.stderr == plain.stderr == "", verbose.stderr


def test_a_dump_variable_the_dump_did_not_set_is_reported_and_imports_are_served(tmp_path, app):
    # CODESHARE_DUMP, which `python -m codeshare dump` sets for the process
    # it execs, set by hand: one line, no recording, the archive served.
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app, check=False)
    bogus = {"CODESHARE_DUMP": "record please"}
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=bogus)
    assert (archived.returncode, archived.stdout) == (plain.returncode, plain.stdout)
    assert archived.stderr == "codeshare: not recording: CODESHARE_DUMP is not one `python -m codeshare dump` sets\n"
    assert {"json", "textwrap"} <= served(verbose.stderr)
    assert sorted(os.listdir(tmp_path)) == ["app", "app.csa"]


@pytest.mark.skipif(not os.environ.get("CODESHARE_DEBIAN_PYTHON"), reason="no venv of Debian's python3.11")
def test_an_archive_of_another_interpreter_build_is_passed_over_silently(tmp_path, app):
    # As a child of a program dumped under another build inherits it.
    other = debian_archive(tmp_path, app)
    plain, archived, verbose = run_both(["main.py"], other, cwd=app)
    assert_same_run(plain, archived)
    assert verbose.stderr.startswith(f"codeshare: not using the archive: {other}: written by another "
                                     "Python interpreter build (interpreter mismatch)\n")
    assert not served(verbose.stderr)


CHILD_ELSEWHERE = """
import os, subprocess, sys
elsewhere = os.path.join(os.path.dirname(os.path.abspath(__file__)), "elsewhere")
os.makedirs(elsewhere, exist_ok=True)
child = subprocess.run([sys.executable, "-c", "import json; print(json.dumps('child'))"], cwd=elsewhere,
                       capture_output=True, text=True)
print(child.returncode, repr(child.stdout), repr(child.stderr))
"""


def test_a_child_in_another_directory_that_inherits_a_relative_archive_path_starts_as_plain(tmp_path):
    # The relative path names no file from the child's directory: like an
    # inherited foreign archive, it is passed over without a word.
    app = make_app(tmp_path / "app", {"main.py": CHILD_ELSEWHERE})
    dump(os.path.join(app, "app.csa"), ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], "app.csa", cwd=app)
    assert plain.stdout == "0 '\"child\"\\n' ''\n", plain.stdout + plain.stderr
    assert_same_run(plain, archived)
    assert "subprocess" in served(verbose.stderr)
    assert "codeshare: not using the archive: app.csa: cannot read the archive file" in verbose.stdout


def test_concurrent_dumps_while_processes_start(tmp_path, app):
    archive = tmp_path / "shared.csa"
    dump(archive, ["main.py"], cwd=app, check=False)
    environment = dict(os.environ, CODESHARE_ARCHIVE=str(archive))
    expected = subprocess.run([sys.executable, "main.py"], cwd=app, stdout=subprocess.PIPE, text=True).stdout
    dumps = [subprocess.Popen([sys.executable, "-m", "codeshare", "dump", "-o", str(archive), "main.py"],
                              cwd=app, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    readers = [subprocess.Popen([sys.executable, "main.py"], cwd=app, env=environment,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(20)]
    for process in dumps + readers:
        process.wait(timeout=120)
    for reader in readers:
        out, err = reader.communicate()
        assert reader.returncode == 7 and out == expected and err == "", (reader.returncode, out, err)
    for process in dumps:
        assert process.returncode == 7
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")], "no temporary file left"
    info = run_python(["-m", "codeshare", "info", str(archive)])
    assert "modules:" in info.stdout
    _, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert {"json", "textwrap", "argparse"} <= served(verbose.stderr)


REPLACES_ITS_ARCHIVE = """
import os, shutil, sys
import json
archive = os.environ.get("CODESHARE_ARCHIVE")
if archive:   # a new dump lands while the program runs: another file, the same content
    shutil.copyfile(archive, archive + ".new")
    os.replace(archive + ".new", archive)
import textwrap, argparse
print(json.dumps([1]), textwrap.dedent("  ok"), argparse.__name__)
"""


def test_an_archive_replaced_while_a_process_uses_it_is_not_mixed_with_the_old_index(tmp_path):
    # The process read the old file's index; every later read must come
    # from that file, or the module loads as plain.
    app = make_app(tmp_path / "app", {"main.py": REPLACES_ITS_ARCHIVE})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"CODESHARE_READAHEAD": "off"})
    assert "[1] ok argparse" in plain.stdout
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr)
    assert (f"codeshare: fell back on textwrap: {archive}: module textwrap: the archive file was replaced or "
            "changed since it was opened") in verbose.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/python3.11"),
                    reason="needs root (to run as nobody) and Debian's python3.11 (nobody cannot enter /root)")
def test_read_only_archive_of_another_user_is_served(tmp_path, app):
    # pyenv's interpreter lives under /root, which nobody cannot enter:
    # this runs on Debian's interpreter (a venv made by scripts/test).
    python = os.environ.get("CODESHARE_DEBIAN_PYTHON")
    assert python, "scripts/test sets CODESHARE_DEBIAN_PYTHON"
    # pytest's own temporary directories are private to root.
    shared = tempfile.mkdtemp(prefix="codeshare-nobody-")
    try:
        os.chmod(shared, 0o755)
        app = make_app(os.path.join(shared, "app"), {"main.py": MAIN})
        os.chmod(app, 0o755)
        archive = os.path.join(shared, "root-owned.csa")
        run_python(["-m", "codeshare", "dump", "-o", archive, "main.py"], python=python, cwd=app, check=False)
        os.chmod(archive, 0o444)
        run_as_nobody(python, app, archive)
    finally:
        shutil.rmtree(shared)


def run_as_nobody(python, app, archive):
    environment = dict(os.environ, CODESHARE_ARCHIVE=archive, CODESHARE_VERBOSE="1")
    result = subprocess.run(["runuser", "-u", "nobody", "--", python, "main.py"], cwd=app, env=environment,
                            capture_output=True, text=True)
    assert result.returncode == 7, result.stderr
    assert {"json", "textwrap", "argparse"} <= served(result.stderr), result.stderr


def test_the_hook_imports_its_own_package_whatever_else_is_on_the_path(tmp_path, app):
    # A namesake earlier on PYTHONPATH (a checkout, a module of the same
    # name) is not what the start-up hook imports; the program would still
    # get it from a plain `import codeshare`.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "codeshare.py").write_text("raise RuntimeError('the namesake was imported')\n")
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app, check=False)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"PYTHONPATH": str(shadow)})
    assert plain.returncode == 7
    assert_same_run(plain, archived)
    assert "codeshare: served " in verbose.stderr, verbose.stderr


def test_the_hook_imports_its_extension_built_under_another_suffix(tmp_path, app):
    # The hook loads the extension from the file named with the first
    # extension suffix, and imports it as usual when that is not there.
    import codeshare
    from importlib.machinery import EXTENSION_SUFFIXES
    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(codeshare.__file__), site / "codeshare",
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.rename(site / "codeshare" / f"_core{EXTENSION_SUFFIXES[0]}", site / "codeshare" / "_core.abi3.so")
    shutil.copyfile(os.path.join(os.path.dirname(os.path.dirname(codeshare.__file__)), "codeshare.pth"),
                    site / "codeshare.pth")
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app, check=False)
    # -S, then site.addsitedir: the copy's .pth runs the copy's hook.
    program = (f"import site; site.addsitedir({str(site)!r}); import sys\n"
               "print([getattr(finder, '__name__', type(finder).__name__) for finder in sys.meta_path])\n" + MAIN)
    plain, archived, verbose = run_both(["-S", "-c", program], archive, cwd=app)
    assert plain.returncode == 7 and "'PathFinder'" in plain.stdout
    assert archived.stdout == plain.stdout.replace("'PathFinder'", "'ArchiveFinder', 'PathFinder'")
    assert archived.stderr == plain.stderr
    assert "codeshare: served json" in verbose.stderr, verbose.stderr


def test_verify_reports_stale_missing_and_shadowed(tmp_path):
    app = make_app(tmp_path / "app", {"main.py": "import a, b, c, json\n", "a.py": "", "b.py": "", "c.py": ""})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    assert run_python(["-m", "codeshare", "verify", str(archive)]).returncode == 0
    with open(os.path.join(app, "a.py"), "w") as file:
        file.write("CHANGED = 1\n")
    os.remove(os.path.join(app, "b.py"))
    os.makedirs(os.path.join(app, "c"))
    with open(os.path.join(app, "c", "__init__.py"), "w") as file:
        file.write("")
    result = run_python(["-m", "codeshare", "verify", str(archive)], check=False)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("stale     a:") for line in lines), lines
    assert any(line.startswith("missing   b:") for line in lines), lines
    assert any(line.startswith("shadowed  c:") for line in lines), lines
    assert not any(line.split()[1] == "json:" for line in lines[:-1] if not line.startswith("searched"))


def test_archive_without_an_import_manifest_is_refused(tmp_path, app):
    archive = tmp_path / "library.csa"
    run_python(["-c", f"import codeshare.archive; codeshare.archive.write({str(archive)!r}, "
                      "[('m', compile('x = 1', 'm.py', 'exec'), None)])"])
    plain = run_python(["main.py"], cwd=app, check=False)
    archived = run_python(["main.py"], cwd=app, env={"CODESHARE_ARCHIVE": str(archive)}, check=False)
    assert archived.returncode == plain.returncode == 7 and archived.stdout == plain.stdout
    assert archived.stderr == (f"codeshare: not using the archive: {archive}: not written by "
                               "`python -m codeshare dump` (no import manifest)\n")


def test_archive_of_another_manifest_version_is_refused(tmp_path, app):
    # An archive dumped by an earlier codeshare: its metadata means something else.
    archive = tmp_path / "old.csa"
    run_python(["-c", f"import codeshare.archive; codeshare.archive.write({str(archive)!r}, "
                      "[('m', compile('x = 1', 'm.py', 'exec'), {'origin': 'm.py'})], "
                      "{'version': 1, 'searches': [], 'directories': {}, 'listings': b'', 'extensions': {}})"])
    plain = run_python(["main.py"], cwd=app, check=False)
    archived = run_python(["main.py"], cwd=app, env={"CODESHARE_ARCHIVE": str(archive)}, check=False)
    assert archived.returncode == plain.returncode == 7 and archived.stdout == plain.stdout
    assert archived.stderr == (f"codeshare: not using the archive: {archive}: written by another version of "
                               "codeshare (import manifest version 1, this one reads 11): dump it again\n")


def forge(tmp_path, app, *, json_metadata="m", hook_metadata="m", manifest="manifest"):
    """A dump of the app rewritten through the API: json's metadata `m`, the
    hook modules' and the manifest `manifest` replaced by the given
    expressions."""
    good = tmp_path / "good.csa"
    dump(good, ["main.py"], cwd=app, check=False)
    forged = tmp_path / "forged.csa"
    run_python(["-c", "import sys, codeshare.archive as A\n"
                      "a = A.open(sys.argv[1])\n"
                      "manifest = dict(a.manifest)\n"
                      f"def metadata(n, m): return ({json_metadata}) if n == 'json' else "
                      f"({hook_metadata}) if n.startswith('codeshare.') else m\n"
                      "A.write(sys.argv[2], [(n, a.code(n), metadata(n, a.metadata(n))) for n in a.names],"
                      f" {manifest}, together=True)\n",
                str(good), str(forged)])
    return forged


HOOK_MODULES = ("codeshare.resolution", "codeshare.finder")


def test_the_hook_runs_its_own_modules_from_the_archive(tmp_path, app):
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app, check=False)
    assert tuple(archived_names(archive)[:2]) == HOOK_MODULES
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert_same_run(plain, archived)
    assert verbose.stderr.startswith("".join(f"codeshare: ran the hook's {name} from the archive\n"
                                             for name in HOOK_MODULES)), verbose.stderr
    assert {"json", "textwrap", "argparse"} <= served(verbose.stderr)


def test_the_hook_imports_its_module_whose_archived_code_is_damaged(tmp_path, app):
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app, check=False)
    data = bytearray(archive.read_bytes())
    # A byte of resolution.py's docstring, in its module's part of the file.
    data[data.index(b"What an archive records about where each module was found")] ^= 0x20
    archive.write_bytes(data)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert_same_run(plain, archived)
    assert (f"codeshare: imported the hook's codeshare.resolution: {archive}: module codeshare.resolution: "
            "corrupted module data (checksum mismatch)\n") in verbose.stderr, verbose.stderr
    assert "codeshare: ran the hook's codeshare.finder from the archive\n" in verbose.stderr
    assert {"json", "textwrap", "argparse"} <= served(verbose.stderr)


@pytest.mark.parametrize("forgery", ["m[:5] + (m[5] + 1,) + m[6:]", "('elsewhere.py',) + m[1:]", "m[:4] + ('x',) + m[5:]",
                                     "None", "m[:7] + ((True, b'another source'),) + m[8:]", "m[:7] + (b'x',) + m[8:]",
                                     "m[:7] + ((1, b'another source'),) + m[8:]"],
                         ids=["mtime moved", "another file", "size not an int", "None",
                              "another source's hash, checked", "source hash not a pair",
                              "source hash's flag not a bool"])
def test_the_hook_imports_its_modules_that_the_archive_does_not_hold_as_installed(tmp_path, app, forgery):
    # As after codeshare is reinstalled: the archived code may not be the
    # installed codeshare's, which alone knows how to read the archive.
    forged = forge(tmp_path, app, hook_metadata=forgery)
    plain, archived, verbose = run_both(["main.py"], forged, cwd=app)
    assert_same_run(plain, archived)
    for name in HOOK_MODULES:
        assert f"codeshare: imported the hook's {name}: " in verbose.stderr
    assert "from the archive" not in verbose.stderr
    assert {"json", "textwrap", "argparse"} <= served(verbose.stderr)


# One module's metadata, as an archive written through the API might hold it.
FORGED_METADATA = {
    "dict": "{'origin': 'x'}",
    "six keys": "dict.fromkeys('abcdef')",
    "search not in the manifest": "m[:2] + (len(manifest['searches']),) + m[3:]",
    "size not an int": "m[:4] + ('x',) + m[5:]",
    "__cached__ not a str": "m[:6] + (b'x',) + m[7:]",
    "source hash not a pair": "m[:7] + (b'x',) + m[8:]",
    "directories named like it not a tuple": "m[:8] + (['x'],)",
    "a directory named like it not a str": "m[:8] + ((b'x',),)",
    "eight fields": "m[:8]",
}


@pytest.mark.parametrize("forgery", FORGED_METADATA.values(), ids=FORGED_METADATA)
def test_module_whose_metadata_dump_did_not_write_falls_back(tmp_path, app, forgery):
    # That module loads as plain, the rest is served.
    forged = forge(tmp_path, app, json_metadata=forgery)
    plain, archived, verbose = run_both(["main.py"], forged, cwd=app)
    assert_same_run(plain, archived)
    assert archived.returncode == 7
    assert ("codeshare: fell back on json: its metadata is not what `python -m codeshare dump` writes"
            in verbose.stderr)
    assert {"textwrap", "argparse"} <= served(verbose.stderr)
    verify = run_python(["-m", "codeshare", "verify", str(forged)], cwd=app, check=False)
    assert verify.returncode == 1
    assert "malformed json: its metadata is not what `python -m codeshare dump` writes" in verify.stdout


def test_extension_whose_location_dump_did_not_write_falls_back(tmp_path, app):
    forged = forge(tmp_path, app, manifest="{**manifest, 'extensions': {'_json': ('x', False, 99, 0, ())}}")
    plain, archived, verbose = run_both(["main.py"], forged, cwd=app)
    assert_same_run(plain, archived)
    assert ("codeshare: fell back on _json: its location is not what `python -m codeshare dump` writes"
            in verbose.stderr)
    assert {"json", "textwrap", "argparse"} <= served(verbose.stderr)


# What compiling a module needs, as an archive written through the API might
# hold it: what a dump does not write is passed over, and what cannot be
# found leaves the module to plain import, whose compiling then fails alike.
FORGED_COMPILING = {
    "not a pair": ("1", None),
    "codec not a str": ("(1, ())", None),
    "modules not a tuple": ("(None, ['json'])", None),
    "codec not there": ("('no-such-codec', ())", "unknown encoding: no-such-codec"),
    "module not there": ("(None, ('no_such_module',))", "No module named 'no_such_module'"),
}


@pytest.mark.parametrize("forgery, missing", FORGED_COMPILING.values(), ids=FORGED_COMPILING)
def test_what_compiling_needs_is_done_only_as_a_dump_writes_it_and_what_is_missing_falls_back(tmp_path, app, forgery,
                                                                                                missing):
    forged = forge(tmp_path, app, manifest=f"{{**manifest, 'compiling': {{'json': {forgery}}}}}")
    plain, archived, verbose = run_both(["main.py"], forged, cwd=app)
    assert_same_run(plain, archived)
    if missing is None:
        assert {"json", "textwrap", "argparse"} <= served(verbose.stderr)
    else:
        assert f"codeshare: fell back on json: compiling it needs what cannot be found: {missing}" in verbose.stderr
        assert {"textwrap", "argparse"} <= served(verbose.stderr)


@pytest.mark.parametrize("field", ["searches", "directories", "listings", "extensions", "compiling", "program",
                                   "startup"])
def test_archive_whose_manifest_dump_did_not_write_is_refused(tmp_path, app, field):
    forged = forge(tmp_path, app, manifest=f"{{**manifest, {field!r}: {'1.5' if field == 'startup' else '1'}}}")
    plain = run_python(["main.py"], cwd=app, check=False)
    archived = run_python(["main.py"], cwd=app, env={"CODESHARE_ARCHIVE": str(forged)}, check=False)
    assert archived.returncode == plain.returncode == 7 and archived.stdout == plain.stdout
    kind = {"searches": "a list", "program": "a list", "startup": "an int"}.get(field, "a dict")
    assert archived.stderr == (f"codeshare: not using the archive: {forged}: not written by "
                               f"`python -m codeshare dump` (its manifest's {field!r} is not {kind})\n")


# The manifest's record of the directories searched, as an archive written
# through the API might hold it: every directory then counts as changed.
FORGED_DIRECTORIES = {
    "mtime not an int": "{**manifest, 'directories': dict.fromkeys(manifest['directories'], 'x')}",
    "listing not marshal data": "{**manifest, 'listings': dict.fromkeys(manifest['listings'], b'\\xff'),"
                                " 'directories': {d: t - 1 if t > 0 else t for d, t in manifest['directories'].items()}}",
    "listing not bytes": "{**manifest, 'listings': dict.fromkeys(manifest['listings'], 1), 'directories':"
                         " {d: t - 1 if t > 0 else t for d, t in manifest['directories'].items()}}",
}


@pytest.mark.parametrize("forgery", FORGED_DIRECTORIES.values(), ids=FORGED_DIRECTORIES)
def test_directories_dump_did_not_record_mean_a_normal_search(tmp_path, app, forgery):
    forged = forge(tmp_path, app, manifest=forgery)
    plain, archived, verbose = run_both(["main.py"], forged, cwd=app)
    assert_same_run(plain, archived)
    assert "codeshare: textwrap: " in verbose.stderr and "the normal search found the recorded file" in verbose.stderr
    assert {"json", "textwrap", "argparse"} <= served(verbose.stderr)


def test_a_recorded_search_list_holding_an_entry_that_is_not_a_str_means_a_normal_search(tmp_path):
    # As an archive written through the API might hold it, for a run whose
    # sys.path is the same: PathFinder skips the None, and so does the check.
    main = "import os, sys\nif os.environ.get('NONE'):\n    sys.path.insert(1, None)\n" + MAIN
    app = make_app(tmp_path / "app", {"main.py": main})
    forged = forge(tmp_path, app, manifest="{**manifest, 'searches': [s[:1] + [None] + s[1:] for s in manifest['searches']]}")
    plain, archived, verbose = run_both(["main.py"], forged, cwd=app, env={"NONE": "1"})
    assert_same_run(plain, archived)
    assert archived.returncode == 7
    assert ("codeshare: textwrap: the search path holds an entry that is not a str; the normal search found "
            "the recorded file") in verbose.stderr
