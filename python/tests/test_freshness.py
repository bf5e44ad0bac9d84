"""Acceptance: never stale, never shadowed. After the dump, whatever plain
Python would import now is what runs, and the rest is still served."""
import os
import re
import sys
import zipfile

import pytest

from conftest import run_python
from importing import assert_same_run, dump, make_app, run_both, served

MAIN = """
import os, sys
extra = os.environ.get("EXTRA")
if extra:
    sys.path.insert(0, extra)
import snapshot, textwrap, json
try:
    import helper
    print("helper", helper.VALUE)
except ImportError as error:
    print("ImportError", error)
print(textwrap.__file__ == os.path.join(os.path.dirname(os.__file__), "textwrap.py"))
"""


def make(tmp_path):
    app = make_app(tmp_path / "app", {"main.py": MAIN, "helper.py": "VALUE = 1\n"})
    archive = tmp_path / "app.csa"
    os.makedirs(tmp_path / "extra")
    dump(archive, ["main.py"], cwd=app, env={"EXTRA": str(tmp_path / "extra")})
    return app, archive


def dumped_app(tmp_path, main, env=None):
    """An app of main.py (`main`) and helper.py (VALUE = 1), and the archive
    of a dump of it running main.py: (app, archive)."""
    app = make_app(tmp_path / "app", {"main.py": main, "helper.py": "VALUE = 1\n"})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app, env=env)
    return app, archive


def run_main(tmp_path, app, archive, extra="extra", **env):
    """(plain, archived, verbose) runs of main.py with EXTRA=tmp_path/extra."""
    return run_both(["main.py"], archive, cwd=app, env={"EXTRA": str(tmp_path / extra), **env})


def write(path, text):
    with open(path, "w") as file:
        file.write(text)


def test_edited_module_loads_from_source_and_the_rest_is_served(tmp_path):
    app, archive = make(tmp_path)
    write(os.path.join(app, "helper.py"), "VALUE = 'edited'\n")
    plain, archived, verbose = run_main(tmp_path, app, archive)
    assert "helper edited" in plain.stdout
    assert_same_run(plain, archived)
    assert "codeshare: fell back on helper: source changed since the dump" in verbose.stderr
    assert {"textwrap", "json", "json.decoder", "snapshot"} <= served(verbose.stderr)


def reproducible_build(tmp_path, invalidation):
    """As a reproducible build leaves a tree: every mtime set to
    SOURCE_DATE_EPOCH and, py_compile's default then, hash-based .pycs. A
    version bumped to one of the same length after the dump changes neither
    the size nor the mtime. (app, archive, helper.py's path, its stat)."""
    app = make_app(tmp_path / "app", {"main.py": "import helper\nprint(helper.VERSION)\n",
                                      "helper.py": "VERSION = '1.2.3'\n"})
    run_python(["-m", "compileall", "-q", "--invalidation-mode", invalidation, app])
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    helper = os.path.join(app, "helper.py")
    status = os.stat(helper)
    write(helper, "VERSION = '1.2.4'\n")
    os.utime(helper, ns=(status.st_atime_ns, status.st_mtime_ns))
    return app, archive, helper, status


def test_a_source_edited_keeping_size_and_mtime_loads_as_its_checked_hash_pyc_decides(tmp_path):
    app, archive, helper, status = reproducible_build(tmp_path, "checked-hash")
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "1.2.4\n", plain.stderr
    assert_same_run(plain, archived)
    assert "fell back on helper: source changed since the dump" in verbose.stderr
    # Only touched: the source's hash is the one import checks, and the
    # archived code is served.
    write(helper, "VERSION = '1.2.3'\n")
    os.utime(helper, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "1.2.3\n", plain.stderr
    assert_same_run(plain, archived)
    assert "helper" in served(verbose.stderr)


@pytest.mark.parametrize("invalidation, checks, version", [("checked-hash", "never", "1.2.3"),
                                                           ("unchecked-hash", "default", "1.2.3"),
                                                           ("unchecked-hash", "always", "1.2.4")])
def test_check_hash_based_pycs_decides_for_a_served_module_as_for_plain_import(tmp_path, invalidation, checks, version):
    # Where import does not check the source, it runs the .pyc, stale or not.
    app, archive, _, _ = reproducible_build(tmp_path, invalidation)
    plain, archived, _ = run_both(["main.py"], archive, cwd=app, python_flags=["--check-hash-based-pycs", checks],
                                  env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert plain.stdout == f"{version}\n", plain.stderr
    assert_same_run(plain, archived)


def test_module_edited_to_the_same_size_loads_from_source(tmp_path):
    # Only the mtime tells this edit apart.
    app, archive = make(tmp_path)
    path = os.path.join(app, "helper.py")
    mtime_ns = os.stat(path).st_mtime_ns
    write(path, "VALUE = 2\n")
    os.utime(path, ns=(mtime_ns + 1_000_000_000, mtime_ns + 1_000_000_000))
    plain, archived, verbose = run_main(tmp_path, app, archive)
    assert "helper 2" in plain.stdout
    assert_same_run(plain, archived)
    assert "codeshare: fell back on helper: source changed since the dump" in verbose.stderr


def test_deleted_module_raises_import_error(tmp_path):
    app, archive = make(tmp_path)
    os.remove(os.path.join(app, "helper.py"))
    plain, archived, _ = run_main(tmp_path, app, archive)
    assert "ImportError No module named 'helper'" in plain.stdout
    assert_same_run(plain, archived)


def test_a_directory_named_like_a_module_decides_by_its_init_files_as_under_plain_python(tmp_path):
    # FileFinder takes a package's first __init__ file in a directory named
    # like the module before any module of the name, and notes one without
    # as a namespace portion. Adding or removing that file moves the mtime
    # of that directory, not of the one searched: the archive served a
    # package whose __init__.py was gone (FileNotFoundError), and a module
    # where plain import now finds a package.
    app = make_app(tmp_path / "app", {
        "main.py": "import os, sys\n"
                   "here = os.path.dirname(os.path.abspath(__file__))\n"
                   "sys.path[1:1] = [os.path.join(here, 'lib1'), os.path.join(here, 'lib2')]\n"
                   "import json, lone, pkg.sub, helper, shadow\n"
                   "print(getattr(lone, 'X', None), getattr(pkg, 'X', None), pkg.sub.Y, type(pkg.__path__).__name__,\n"
                   "      helper.VALUE, shadow.VALUE)\n",
        "lone/__init__.py": "X = 1\n",
        "pkg/__init__.py": "X = 2\n",
        "pkg/sub.py": "Y = 3\n",
        "helper.py": "VALUE = 'module'\n",
        "helper/data.txt": "",
        "lib1/shadow/data.txt": "",
        "lib2/shadow.py": "VALUE = 'lib2'\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    for package in ("lone", "pkg"):
        os.remove(os.path.join(app, package, "__init__.py"))
    write(os.path.join(app, "helper", "__init__.py"), "VALUE = 'package'\n")
    write(os.path.join(app, "lib1", "shadow", "__init__.py"), "VALUE = 'lib1'\n")
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "None None 3 _NamespacePath package lib1\n", plain.stdout + plain.stderr
    assert_same_run(plain, archived)
    assert {"json", "pkg.sub"} <= served(verbose.stderr)


def test_a_directory_the_program_changes_while_the_dump_runs_is_compared_with_what_import_saw(tmp_path):
    # The dump recorded each directory as the program left it: a module the
    # program then removed was served and its source could not be read
    # (FileNotFoundError), and one it wrote earlier on the path did not
    # shadow the module imported.
    app = make_app(tmp_path / "app", {
        "main.py": "import os, sys\n"
                   "here = os.path.dirname(os.path.abspath(__file__))\n"
                   "sys.path[1:1] = [os.path.join(here, 'lib1'), os.path.join(here, 'lib2')]\n"
                   "import json, helper\n"
                   "try:\n"
                   "    import gone\n"
                   "    os.remove(gone.__file__)\n"
                   "except ImportError as error:\n"
                   "    print(error)\n"
                   "print(helper.VALUE)\n"
                   "shadow = os.path.join(here, 'lib1', 'helper.py')\n"
                   "if not os.path.exists(shadow):\n"
                   "    with open(shadow, 'w') as file:\n"
                   "        file.write('VALUE = 1')\n",
        "gone.py": "",
        "lib1/unrelated.py": "",
        "lib2/helper.py": "VALUE = 2\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "No module named 'gone'\n1\n", plain.stdout + plain.stderr
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr)


def test_module_added_earlier_on_sys_path_wins(tmp_path):
    app, archive = make(tmp_path)
    write(os.path.join(app, "textwrap.py"), "print('the shadowing textwrap')\n")
    plain, archived, verbose = run_main(tmp_path, app, archive)
    assert "the shadowing textwrap" in plain.stdout
    assert_same_run(plain, archived)
    assert "textwrap" not in served(verbose.stderr)


def test_module_added_to_a_zip_earlier_on_sys_path_wins(tmp_path):
    # A zip archive on sys.path is no directory: its mtime says nothing of
    # which modules it holds.
    app = make_app(tmp_path / "app", {"main.py": MAIN, "helper.py": "VALUE = 1\n"})
    archive = tmp_path / "app.csa"
    with zipfile.ZipFile(tmp_path / "extra.zip", "w") as bundle:
        bundle.writestr("unrelated.py", "")
    dump(archive, ["main.py"], cwd=app, env={"EXTRA": str(tmp_path / "extra.zip")})
    with zipfile.ZipFile(tmp_path / "extra.zip", "a") as bundle:
        bundle.writestr("helper.py", "VALUE = 'from the zip'\n")
    plain, archived, verbose = run_main(tmp_path, app, archive, extra="extra.zip")
    assert "helper from the zip" in plain.stdout
    assert_same_run(plain, archived)
    assert "textwrap" in served(verbose.stderr), "verified by the normal search, still served"
    verify = run_python(["-m", "codeshare", "verify", str(archive)], check=False)
    assert f"searched  textwrap: {tmp_path / 'extra.zip'} is not a directory" in verify.stdout


def test_sys_path_changed_at_run_time_resolves_as_plain(tmp_path):
    app, archive = make(tmp_path)
    # A directory inserted at run time now holds a helper: it must win.
    write(tmp_path / "extra" / "helper.py", "VALUE = 'from extra'\n")
    plain, archived, _ = run_main(tmp_path, app, archive)
    assert "helper from extra" in plain.stdout
    assert_same_run(plain, archived)
    # Another directory than at the dump: sys.path differs, plain search decides.
    os.makedirs(tmp_path / "other")
    write(tmp_path / "other" / "json.py", "print('the shadowing json')\n")
    plain, archived, verbose = run_main(tmp_path, app, archive, extra="other")
    assert "the shadowing json" in plain.stdout
    assert_same_run(plain, archived)
    assert "textwrap" in served(verbose.stderr), "verified by the normal search, still served"


def test_a_program_run_from_another_directory_is_served_without_a_search(tmp_path):
    # As `python -m app` started elsewhere: the working directory, first on
    # sys.path, is one the dump never saw. It is listed once; every module
    # not named there is served straight from the archive.
    app = make_app(tmp_path / "app", {"helper.py": "VALUE = 1\n"})
    program = ["-c", "import snapshot, helper, textwrap, json, email.parser\nprint(helper.VALUE, json.__file__)"]
    env = {"PYTHONPATH": app}
    archive = tmp_path / "app.csa"
    dump(archive, program, cwd=app, env=env)
    elsewhere = tmp_path / "elsewhere"
    os.makedirs(elsewhere / "email")   # a namespace portion: plain import goes on to the package
    write(elsewhere / "unrelated.py", "")
    plain, archived, verbose = run_both(program, archive, cwd=elsewhere, env=env)
    assert plain.stdout.startswith("1 /"), plain.stderr
    assert_same_run(plain, archived)
    assert {"snapshot", "helper", "textwrap", "json", "json.decoder"} <= served(verbose.stderr), verbose.stderr
    searched = [line for line in verbose.stderr.splitlines() if "normal search" in line]
    assert len(searched) == 1 and searched[0].startswith(f"codeshare: email: {elsewhere} holds 'email' and comes "
                                                         "before"), verbose.stderr
    assert {"email", "email.parser"} <= served(verbose.stderr)
    # The working directory moved: what the new one holds counts.
    os.makedirs(elsewhere / "moved")
    write(elsewhere / "moved" / "textwrap.py", "print('the shadowing textwrap')\n")
    moving = ["-c", "import os, helper\nos.chdir('moved')\nimport textwrap"]
    plain, archived, verbose = run_both(moving, archive, cwd=elsewhere, env=env)
    assert plain.stdout == "the shadowing textwrap\n", plain.stderr
    assert_same_run(plain, archived)
    assert "helper" in served(verbose.stderr) and "textwrap" not in served(verbose.stderr)
    # A module of the same name there is the one plain import takes.
    write(elsewhere / "json.py", "print('the shadowing json')\n")
    plain, archived, verbose = run_both(program, archive, cwd=elsewhere, env=env)
    assert "the shadowing json" in plain.stdout
    assert_same_run(plain, archived)
    assert f"fell back on json: {elsewhere} holds 'json' and comes before" in verbose.stderr, verbose.stderr
    assert {"helper", "textwrap"} <= served(verbose.stderr)


def test_a_program_that_removes_its_working_directory_runs_as_plain(tmp_path):
    # '' on sys.path then names no directory, and PathFinder skips it.
    app = make_app(tmp_path / "app", {"helper.py": "VALUE = 1\n"})
    program = ["-c", "import os, sys\nif sys.argv[1:]: os.rmdir(os.getcwd())\n"
                     "import snapshot, helper, textwrap\nprint(helper.VALUE)", "remove"]
    env = {"PYTHONPATH": app}

    def in_a_removed_directory(target, **more):
        os.makedirs(tmp_path / "gone")
        return run_python(target, cwd=tmp_path / "gone", env={**env, **more}, check=False)

    archive = tmp_path / "app.csa"
    dumped = in_a_removed_directory(["-m", "codeshare", "dump", "-o", str(archive), *program])
    assert dumped.returncode == 0 and dumped.stderr == "" and archive.exists(), dumped.stderr
    dump(archive, program[:2], cwd=tmp_path, env=env)
    plain = in_a_removed_directory(program)
    assert plain.stdout.startswith("1\n"), plain.stderr
    assert_same_run(plain, in_a_removed_directory(program, CODESHARE_ARCHIVE=str(archive)))
    verbose = in_a_removed_directory(program, CODESHARE_ARCHIVE=str(archive), CODESHARE_VERBOSE="1")
    assert "codeshare: textwrap: the working directory was removed; the normal search found the recorded file" \
        in verbose.stderr, verbose.stderr
    assert {"helper", "textwrap"} <= served(verbose.stderr)


def test_a_relative_entry_on_sys_path_names_the_directory_it_was_first_searched_in(tmp_path):
    # PathFinder keeps the FileFinder it made for 'lib' at the first search,
    # in the directory the program started in, after the program moves.
    main = "import os, sys\nsys.path.insert(0, 'lib')\nimport json\nos.chdir('sub')\nimport textwrap\n"
    app = make_app(tmp_path / "app", {"main.py": main, "lib/placeholder": "", "sub/placeholder": ""})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    write(os.path.join(app, "lib", "textwrap.py"), "print('the shadowing textwrap')\n")
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "the shadowing textwrap\n", plain.stderr
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr)


def test_an_entry_with_dot_dot_after_a_symbolic_link_names_the_directory_the_kernel_finds(tmp_path):
    # 'link/../lib' is lib beside the link's target, not beside the link:
    # the kernel follows the link before it takes '..', as FileFinder's
    # stat and listing do.
    os.makedirs(tmp_path / "real" / "inner")
    os.makedirs(tmp_path / "real" / "lib")
    os.makedirs(tmp_path / "lib")
    os.symlink(tmp_path / "real" / "inner", tmp_path / "link")
    write(tmp_path / "real" / "lib" / "vendored.py", "NAME = 'vendored'\n")
    main = "import os, sys\nsys.path.insert(0, os.environ['EXTRA'])\nimport vendored, json, textwrap\n"
    env = {"EXTRA": os.path.join(tmp_path, "link", "..", "lib")}
    app, archive = dumped_app(tmp_path, main, env=env)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=env)
    assert_same_run(plain, archived)
    assert {"vendored", "json", "textwrap"} <= served(verbose.stderr)
    write(tmp_path / "real" / "lib" / "textwrap.py", "print('the shadowing textwrap')\n")
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=env)
    assert plain.stdout == "the shadowing textwrap\n", plain.stderr
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr)


def test_a_module_the_program_writes_while_it_runs_is_found_after_invalidate_caches(tmp_path):
    # As importlib's documentation asks of a program that creates a module
    # while it runs: codeshare then looks at the directories again.
    main = ("import importlib, os, json\n"
            "if os.environ.get('WRITE'):\n"
            "    with open('textwrap.py', 'w') as file:\n"
            "        file.write(\"print('the shadowing textwrap')\\n\")\n"
            "    importlib.invalidate_caches()\n"
            "import textwrap\n"
            "if os.environ.get('WRITE'):\n"
            "    os.remove('textwrap.py')\n")
    app, archive = dumped_app(tmp_path, main)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"WRITE": "1"})
    assert plain.stdout == "the shadowing textwrap\n", plain.stderr
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr) and "textwrap" not in served(verbose.stderr)


# An import hook as beartype.claw installs one: a path hook whose loader
# compiles each source its own way, in the place of importlib's, the path
# finders' cache cleared. The hook fails any comparison: plain import never
# makes one.
HOOKED = """import os, sys
if os.environ.get("HOOK"):
    from importlib.machinery import (BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES, ExtensionFileLoader,
                                     FileFinder, SourceFileLoader, SourcelessFileLoader)
    class MarkingLoader(SourceFileLoader):
        def source_to_code(self, data, path, *, _optimize=-1):
            return compile(data + b"\\nMARKED = True\\n", path, "exec", dont_inherit=True)
    class Hook:
        def __init__(self, hook):
            self.hook = hook
        def __call__(self, path):
            return self.hook(path)
        def __eq__(self, other):
            raise RuntimeError("no comparisons")
        __hash__ = object.__hash__
    sys.path_hooks[-1] = Hook(FileFinder.path_hook((ExtensionFileLoader, EXTENSION_SUFFIXES),
                                                   (MarkingLoader, SOURCE_SUFFIXES),
                                                   (SourcelessFileLoader, BYTECODE_SUFFIXES)))
    sys.path_importer_cache.clear()
import helper, textwrap
print(getattr(helper, "MARKED", False), type(helper.__loader__).__name__, type(textwrap.__loader__).__name__)
"""


def test_a_path_hook_added_at_run_time_loads_as_plain(tmp_path):
    app, archive = dumped_app(tmp_path, HOOKED)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"HOOK": "1"})
    assert plain.stdout == "True MarkingLoader MarkingLoader\n", plain.stderr
    assert_same_run(plain, archived)
    assert "fell back on helper: sys.path_hooks changed since start-up" in verbose.stderr
    # Without the hook, the same archive serves both.
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "False SourceFileLoader SourceFileLoader\n"
    assert_same_run(plain, archived)
    assert {"helper", "textwrap"} <= served(verbose.stderr)


# What programs put on importlib's classes: a get_code that compiles every
# source afresh, or watches which modules load; a find_spec that hides a
# module (an optional dependency, _json here) or watches the searches; a
# get_data, on a base class, that watches which files are read.
PATCHED = """import os
from importlib.machinery import FileFinder, PathFinder, SourceFileLoader
from importlib._bootstrap_external import FileLoader
patch = os.environ.get("PATCH")
if patch == "FileLoader.get_data":
    read = FileLoader.get_data
    def get_data(loader, path):
        print(patch, os.path.basename(path).partition(".")[0])
        return read(loader, path)
    FileLoader.get_data = get_data
if patch == "SourceFileLoader.get_code":
    original = SourceFileLoader.get_code
    def get_code(loader, name):
        print(patch, name)
        return original(loader, name)
    SourceFileLoader.get_code = get_code
if patch == "PathFinder.find_spec":
    found = PathFinder.find_spec
    def find_spec(name, path=None, target=None):
        print(patch, name)
        return None if name == "_json" else found(name, path, target)
    PathFinder.find_spec = staticmethod(find_spec)
if patch == "FileFinder.find_spec":
    searched = FileFinder.find_spec
    def file_find_spec(finder, name, target=None):
        print(patch, name)
        return None if name == "_json" else searched(finder, name, target)
    FileFinder.find_spec = file_find_spec
import helper, textwrap, json.scanner
print(json.scanner.c_make_scanner)
"""


@pytest.mark.parametrize("patched", ["SourceFileLoader.get_code", "PathFinder.find_spec", "FileFinder.find_spec",
                                     "FileLoader.get_data"])
def test_what_the_program_puts_on_importlibs_classes_runs_as_under_plain_python(tmp_path, patched):
    app, archive = dumped_app(tmp_path, PATCHED)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"PATCH": patched})
    assert f"{patched} helper\n" in plain.stdout and f"{patched} textwrap\n" in plain.stdout, plain.stderr
    assert plain.stdout.endswith("\nNone\n") == patched.endswith("find_spec"), plain.stdout
    assert_same_run(plain, archived)
    assert f"fell back on helper: {patched} replaced since start-up" in verbose.stderr
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "<class '_json.Scanner'>\n"
    assert_same_run(plain, archived)
    assert {"helper", "textwrap"} <= served(verbose.stderr) and "served the location of _json" in verbose.stderr


def test_an_attribute_set_on_importlibs_classes_leaves_imports_served(tmp_path):
    # Only what replaces importlib's own methods leaves imports to it. The
    # second mark fails at any attribute asked of it: plain import asks none.
    # What a served import calls too (an import-time profiler's
    # _find_and_load) it calls as plain import does.
    main = ("from importlib.machinery import PathFinder, SourceFileLoader\n"
            "class Strict:\n"
            "    def __getattr__(self, name):\n"
            "        raise RuntimeError(name)\n"
            "PathFinder.seen = True\nSourceFileLoader.seen = Strict()\n"
            "import importlib._bootstrap, importlib._bootstrap_external, posix\n"
            "importlib._bootstrap_external.seen = posix.seen = importlib._bootstrap.seen = Strict()\n"
            "find_and_load = importlib._bootstrap._find_and_load\n"
            "def profiled(name, import_):\n"
            "    print('importing', name)\n"
            "    return find_and_load(name, import_)\n"
            "importlib._bootstrap._find_and_load = profiled\n"
            "import helper, textwrap\n")
    app, archive = dumped_app(tmp_path, main)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert "importing helper\nimporting textwrap\n" in plain.stdout, plain.stdout
    assert_same_run(plain, archived)
    assert {"helper", "textwrap"} <= served(verbose.stderr) and "fell back on" not in verbose.stderr



# What programs replace in importlib's modules and the built-in modules it
# calls: a stat cache in importlib's _path_stat (a Blender add-on's), a
# listdir that hides a module (a sandbox's, in posix or in a module put in
# place of importlib's), a marshal.loads that watches which code is loaded,
# the -v lines' function that logs which caches are read, the class of the
# specs the search makes, one that marks them.
REPLACED = """import os, sys
import importlib._bootstrap, importlib._bootstrap_external, marshal, posix
patch = os.environ["PATCH"]
if patch == "importlib._bootstrap_external._path_stat":
    stat = importlib._bootstrap_external._path_stat
    def cached_stat(path):
        if path.endswith(("helper.py", "textwrap.py")):
            print(patch, os.path.basename(path))
        return stat(path)
    importlib._bootstrap_external._path_stat = cached_stat
listdir = posix.listdir
hiding_listdir = lambda path=".": [name for name in listdir(path) if name != "helper.py"]
if patch == "posix.listdir":
    posix.listdir = hiding_listdir
    importlib.invalidate_caches()
if patch == "importlib._bootstrap_external._os":
    sandboxed = type(sys)("posix")
    vars(sandboxed).update(vars(posix), listdir=hiding_listdir)
    importlib._bootstrap_external._os = sandboxed
    importlib.invalidate_caches()
if patch == "marshal.loads":
    loads = marshal.loads
    def watched_loads(data, /):
        code = loads(data)
        if code.co_filename.endswith("textwrap.py"):
            print(patch, "textwrap")
        return code
    marshal.loads = watched_loads
if patch == "importlib._bootstrap._verbose_message":
    def logged(message, *args, verbosity=1):
        if message.startswith("code object from") and "textwrap" in args[0]:
            print(patch, "textwrap")
    importlib._bootstrap._verbose_message = logged
if patch == "importlib._bootstrap.ModuleSpec":
    class MarkedSpec(importlib._bootstrap.ModuleSpec):
        pass
    importlib._bootstrap.ModuleSpec = MarkedSpec
try:
    import helper
except ImportError as error:
    print(error)
import textwrap
if patch == "importlib._bootstrap.ModuleSpec":
    print(patch, type(helper.__spec__).__name__, type(textwrap.__spec__).__name__)
"""


@pytest.mark.parametrize("replaced", ["importlib._bootstrap_external._path_stat", "posix.listdir",
                                      "importlib._bootstrap_external._os", "marshal.loads",
                                      "importlib._bootstrap._verbose_message", "importlib._bootstrap.ModuleSpec"])
def test_what_the_program_replaces_in_importlibs_modules_runs_as_under_plain_python(tmp_path, replaced):
    app, archive = dumped_app(tmp_path, REPLACED, env={"PATCH": "none"})
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"PATCH": replaced})
    assert {"importlib._bootstrap_external._path_stat": f"{replaced} helper.py\n{replaced} helper.py\n",
            "posix.listdir": "No module named 'helper'\n",
            "importlib._bootstrap_external._os": "No module named 'helper'\n",
            "marshal.loads": f"{replaced} textwrap\n",
            "importlib._bootstrap._verbose_message": f"{replaced} textwrap\n",
            "importlib._bootstrap.ModuleSpec": f"{replaced} MarkedSpec MarkedSpec\n"}[replaced] in plain.stdout, \
        plain.stderr
    assert_same_run(plain, archived)
    assert f"fell back on helper: {replaced} replaced since start-up" in verbose.stderr

# Finders programs put before PathFinder on sys.meta_path (`insert(-1, ...)`
# or at PathFinder's index), or in its place: one that wraps each module's
# loader to act on the module once it has run (a dependency injector), one
# that watches each import and finds nothing, one with only the legacy
# find_module. The injector's repr fails, and a finder put first fails any
# comparison: plain import calls neither.
META_PATH = """import os, sys
from importlib.machinery import PathFinder, SourceFileLoader
finder = os.environ.get("FINDER")
class Injecting(SourceFileLoader):
    def exec_module(self, module):
        super().exec_module(module)
        module.INJECTED = True
class InjectingFinder:
    def find_spec(self, name, path=None, target=None):
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and type(spec.loader) is SourceFileLoader:
            spec.loader.__class__ = Injecting
        return spec
    def __repr__(self):
        raise RuntimeError("no repr")
class Watching:
    def find_spec(self, name, path=None, target=None):
        print("asked", name)
class Strict:
    def find_spec(self, name, path=None, target=None):
        return None
    def __eq__(self, other):
        raise RuntimeError("no comparisons")
    __hash__ = object.__hash__
class Legacy:
    def find_module(self, name, path=None):
        print("asked the legacy way", name)
if finder == "injecting":
    sys.meta_path.insert(-1, InjectingFinder())
if finder == "in PathFinder's place":
    sys.meta_path[sys.meta_path.index(PathFinder)] = InjectingFinder()
if finder == "watching":
    sys.meta_path.insert(sys.meta_path.index(PathFinder), Watching())
    sys.meta_path.insert(0, Strict())
if finder == "legacy":
    sys.meta_path.insert(-1, Legacy())
import helper, textwrap
print(getattr(helper, "INJECTED", False), getattr(textwrap, "INJECTED", False))
"""


@pytest.mark.parametrize("finder, injected, asked, reason", [
    ("injecting", True, None, "InjectingFinder, before PathFinder on sys.meta_path, found it"),
    ("in PathFinder's place", True, None, "PathFinder does not follow codeshare's finder on sys.meta_path"),
    ("watching", False, "asked", None),
    ("legacy", False, "asked the legacy way", "a finder without find_spec stands before PathFinder on sys.meta_path")])
def test_finders_the_program_puts_before_pathfinder_are_asked_as_under_plain_python(tmp_path, finder, injected,
                                                                                      asked, reason):
    app, archive = dumped_app(tmp_path, META_PATH)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"FINDER": finder})
    assert plain.stdout.endswith(f"{injected} {injected}\n"), plain.stdout
    if asked:
        # Asked once for each import, in turn.
        assert f"{asked} helper\n{asked} textwrap\n" in plain.stdout, plain.stdout
    assert_same_run(plain, archived)
    if reason is None:
        assert {"helper", "textwrap"} <= served(verbose.stderr)
    else:
        assert f"fell back on helper: {reason}" in verbose.stderr, verbose.stderr


# What a program puts in sys.path_importer_cache for a directory, where
# PathFinder looks before it makes a FileFinder: a finder of its own (one
# whose loader acts on each module once it has run), a FileFinder made with
# that loader, or None, which makes PathFinder skip the directory.
CACHED = """import os, sys
from importlib.machinery import FileFinder, SourceFileLoader, SOURCE_SUFFIXES
class Marking(SourceFileLoader):
    def exec_module(self, module):
        super().exec_module(module)
        module.MARKED = True
class MarkingFinder(FileFinder):
    def __init__(self, path):
        super().__init__(path, (Marking, SOURCE_SUFFIXES))
cached = os.environ.get("CACHED")
if cached == "a finder":
    sys.path_importer_cache[os.getcwd()] = MarkingFinder(os.getcwd())
if cached == "a FileFinder":
    sys.path_importer_cache[os.getcwd()] = FileFinder(os.getcwd(), (Marking, SOURCE_SUFFIXES))
if cached == "None":
    sys.path_importer_cache[os.getcwd()] = None
try:
    import helper
    print(getattr(helper, "MARKED", False))
except ImportError as error:
    print(error)
import textwrap
print(getattr(textwrap, "MARKED", False))
"""


@pytest.mark.parametrize("cached, output, held", [
    ("a finder", "True\nFalse\n", "a MarkingFinder"),
    # The archive served `helper` past it.
    ("a FileFinder", "True\nFalse\n", "a FileFinder with loaders of its own"),
    ("None", "No module named 'helper'\nFalse\n", "None")])
def test_what_the_program_puts_in_the_path_importer_cache_is_asked_as_under_plain_python(tmp_path, cached,
                                                                                           output, held):
    app, archive = dumped_app(tmp_path, CACHED)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"CACHED": cached})
    assert plain.stdout == output, plain.stderr
    assert_same_run(plain, archived)
    reason = f"sys.path_importer_cache holds {held} for {app!r}; the normal search found"
    assert f"fell back on helper: {reason}" in verbose.stderr, verbose.stderr
    # The script's directory comes first in every search: a module found
    # further on is checked by a normal search (the finder asked, as plain
    # import asks it), or skips it (None), and is served.
    assert "textwrap" in served(verbose.stderr)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "False\nFalse\n"
    assert_same_run(plain, archived)
    assert {"helper", "textwrap"} <= served(verbose.stderr)


def test_other_optimization_or_debug_ranges_is_passed_over_silently(tmp_path):
    # A child run with other flags inherits CODESHARE_ARCHIVE: its output
    # stays plain's; the reason is there for whoever asks.
    app, archive = make(tmp_path)
    env = {"EXTRA": str(tmp_path / "extra")}
    for flags, reason in ((["-O"], "written under another -O optimization level"),
                          (["-X", "no_debug_ranges"], "written with another -X no_debug_ranges setting")):
        plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=env, python_flags=flags)
        assert_same_run(plain, archived)
        assert verbose.stderr.startswith(f"codeshare: not using the archive: {archive}: {reason}\n")
        assert not served(verbose.stderr)
    assert sys.flags.optimize == 0


def test_check_none_trusts_the_archive(tmp_path):
    app, archive = make(tmp_path)
    write(os.path.join(app, "helper.py"), "VALUE = 'edited'\n")
    _, trusted, _ = run_main(tmp_path, app, archive, CODESHARE_CHECK="none")
    # An immutable deployment's promise: no stat, the archived code runs.
    assert "helper 1" in trusted.stdout


def test_module_added_within_the_mtime_tick_of_the_dump_wins(tmp_path):
    # A directory changed again within the same mtime tick as the dump's
    # look at it keeps the mtime the dump recorded (simulated: set back).
    app, _ = make(tmp_path)
    archive = tmp_path / "fresh.csa"
    os.utime(app)
    dumped = dump(archive, ["main.py"], cwd=app, env={"EXTRA": str(tmp_path / "extra"), "CODESHARE_VERBOSE": "1"})
    assert re.search(r"; [1-9][0-9]* directories changed in the 2 s before the dump or while it ran, listed on every run$",
                     dumped.stderr, re.M)
    mtime_ns = os.stat(app).st_mtime_ns
    write(os.path.join(app, "textwrap.py"), "print('the shadowing textwrap')\n")
    os.utime(app, ns=(mtime_ns, mtime_ns))
    plain, archived, verbose = run_main(tmp_path, app, archive)
    assert "the shadowing textwrap" in plain.stdout
    assert_same_run(plain, archived)
    assert "textwrap" not in served(verbose.stderr)


def test_a_source_suffix_added_at_run_time_finds_what_plain_import_finds(tmp_path):
    # As a Sphinx conf.py adds .pyw: a FileFinder made after it takes
    # early/helper.pyw, before the helper.py the dump recorded.
    main = ("import os\n"
            "if os.environ.get('PYW'):\n"
            "    import importlib.machinery\n"
            "    importlib.machinery.SOURCE_SUFFIXES.append('.pyw')\n"
            "import pkg.helper, textwrap\nprint(pkg.helper.VALUE)\n")
    app = make_app(tmp_path / "app", {
        "main.py": main,
        "pkg/__init__.py": "import os\n__path__.insert(0, os.path.join(os.path.dirname(__file__), 'early'))\n",
        "pkg/helper.py": "VALUE = 'py'\n",
        "pkg/early/helper.pyw": "VALUE = 'pyw'\n"})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"PYW": "1"})
    assert plain.stdout == "pyw\n", plain.stderr
    assert_same_run(plain, archived)
    assert "fell back on pkg.helper: importlib.machinery.SOURCE_SUFFIXES changed since start-up" in verbose.stderr
    # The normal search still finds textwrap where the dump did.
    assert "textwrap" in served(verbose.stderr)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "py\n"
    assert_same_run(plain, archived)
    assert {"pkg.helper", "textwrap"} <= served(verbose.stderr)


def test_bytecode_suffixes_changed_at_run_time_name_the_caches_plain_import_names(tmp_path):
    # As a program that keeps caches of its own does: the first bytecode
    # suffix names each module's __cached__ (and the file read and written).
    main = ("import importlib.machinery, os, sys\n"
            "sys.dont_write_bytecode = True\n"
            "if os.environ.get('PYIC'):\n"
            "    importlib.machinery.BYTECODE_SUFFIXES[:] = ['.pyic']\n"
            "import helper, textwrap\n"
            "print(os.path.basename(helper.__cached__), os.path.basename(textwrap.__cached__))\n")
    app, archive = dumped_app(tmp_path, main)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"PYIC": "1"})
    tag = sys.implementation.cache_tag
    assert plain.stdout == f"helper.{tag}.pyic textwrap.{tag}.pyic\n", plain.stderr
    assert_same_run(plain, archived)
    # The normal search finds the recorded files, whose archived code is served.
    assert ("helper: importlib.machinery.BYTECODE_SUFFIXES changed since start-up; "
            "the normal search found the recorded file") in verbose.stderr
    assert {"helper", "textwrap"} <= served(verbose.stderr)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == f"helper.{tag}.pyc textwrap.{tag}.pyc\n"
    assert_same_run(plain, archived)
    assert {"helper", "textwrap"} <= served(verbose.stderr)


def test_an_entry_on_sys_path_that_fails_comparisons_is_passed_over_as_plain_python_passes_it(tmp_path):
    # PathFinder skips what is not a str or bytes without comparing it. In
    # the place of the stdlib's zip entry (missing): a list of the same length.
    main = ("import os, sys\n"
            "class Strict:\n"
            "    def __eq__(self, other):\n"
            "        raise RuntimeError('no comparisons')\n"
            "    __hash__ = object.__hash__\n"
            "if os.environ.get('STRICT'):\n"
            "    sys.path[1] = Strict()\n"
            "import textwrap\nprint(textwrap.dedent('  ok'))\n")
    app = make_app(tmp_path / "app", {"main.py": main})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"STRICT": "1"})
    assert plain.stdout == "ok\n", plain.stderr
    assert_same_run(plain, archived)
    assert ("textwrap: the search path holds an entry that is not a str; the normal search found the recorded file"
            in verbose.stderr)
    assert "textwrap" in served(verbose.stderr)


def test_modules_found_through_entries_on_sys_path_that_are_not_str_are_searched_as_plain(tmp_path):
    # PathFinder skips None and a pathlib.Path and hands bytes to the path
    # hooks: the dump records no module found through such a list, and
    # still writes the rest.
    main = ("import pathlib, sys\n"
            "import snapshot\n"
            "sys.path[1:1] = [None, pathlib.Path('nowhere'), b'nowhere']\n"
            "import textwrap, colorsys\n"
            "print(textwrap.dedent('  ok'), colorsys.__name__)\n")
    app = make_app(tmp_path / "app", {"main.py": main})
    archive = tmp_path / "app.csa"
    assert dump(archive, ["main.py"], cwd=app).stderr == ""
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert "ok colorsys" in plain.stdout
    assert_same_run(plain, archived)
    assert "snapshot" in served(verbose.stderr)
    assert not {"textwrap", "colorsys"} & served(verbose.stderr)
