"""Acceptance: Python's own machinery works on served modules as on plain
ones (source, tracebacks, resources, reload, runpy, namespace packages,
__path__ tricks, modules replacing themselves, PEP 263 coding lines)."""
import importlib.machinery
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import zipfile

from conftest import run_python
from importing import archived_names, assert_same_run, dump, make_app, run_both, served

FILES = {
    "main.py": """
import importlib, importlib.resources, inspect, os, pkgutil, sys, traceback
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "second"))
import snapshot
import mypkg.mod, mypkg.failing, latin, selfreplace, rebind.inner, ext.first, ext.second, nspkg.leaf, reloadme

print(inspect.getsource(mypkg.mod.double))
try:
    mypkg.failing.explode()
except ZeroDivisionError:
    print(traceback.format_exc())
print(importlib.resources.files("mypkg").joinpath("data.txt").read_text())
print(pkgutil.get_data("mypkg", "data.txt"))
print(latin.TEXT, latin.TEXT.encode("utf-8"))
print(type(sys.modules["selfreplace"]).__name__, selfreplace.ANSWER)
print(rebind.inner.WHERE, rebind.__path__ == [os.path.join(os.path.dirname(rebind.__file__), "impl")])
print(ext.first.NAME, ext.second.NAME, len(ext.__path__))
print(nspkg.leaf.NAME, list(nspkg.__path__))

path = reloadme.__file__
with open(path) as file:
    original = file.read()
status = os.stat(path)
with open(path, "w") as file:
    file.write("VALUE = 'reloaded, longer'\\n")
importlib.reload(reloadme)
print("after reload", reloadme.VALUE)
with open(path, "w") as file:
    file.write(original)
os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
""",
    "mypkg/__init__.py": "",
    "mypkg/data.txt": "packaged data\n",
    "mypkg/mod.py": "def double(x):\n    # a comment getsource keeps\n    return 2 * x\n\n"
                    "if __name__ == '__main__':\n    import sys\n"
                    "    print('run as main', double(21), sys.argv, type(__loader__).__name__)\n",
    "mypkg/failing.py": "def explode():\n    values = {'a': 1}\n    return values['a'] / (len(values) - 1)\n",
    "latin.py": b"# -*- coding: latin-1 -*-\nTEXT = '\xe9t\xe9 \xe0 la plage'\n",
    "selfreplace.py": "import sys, types\nclass Replacement(types.ModuleType):\n    ANSWER = 42\n"
                      "sys.modules[__name__] = Replacement(__name__)\n",
    "rebind/__init__.py": "import os\n__path__ = [os.path.join(os.path.dirname(__file__), 'impl')]\n",
    "rebind/impl/inner.py": "WHERE = 'impl'\n",
    "ext/__init__.py": "import pkgutil\n__path__ = pkgutil.extend_path(__path__, __name__)\n",
    "ext/first.py": "NAME = 'first'\n",
    "second/ext/__init__.py": "",
    "second/ext/second.py": "NAME = 'second'\n",
    "nspkg/leaf.py": "NAME = 'namespace leaf'\n",
    "reloadme.py": "VALUE = 'original'\n",
}


def test_machinery_on_served_modules(tmp_path):
    app = make_app(tmp_path, FILES)
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.returncode == 0, plain.stderr
    for expected in ("return 2 * x", "~~~~~~~~~~~~^~~~~~~~~~~~~~~~~~~", "packaged data", "été à la plage",
                     "Replacement 42", "impl True", "first second 2", "namespace leaf", "after reload reloaded, longer"):
        assert expected in plain.stdout, expected
    assert_same_run(plain, archived)
    assert {"mypkg.mod", "mypkg.failing", "latin", "selfreplace", "rebind.inner", "ext", "ext.first",
            "ext.second", "nspkg.leaf", "reloadme"} <= served(verbose.stderr)
    assert "fell back on reloadme: source changed since the dump" in verbose.stderr


def test_run_module_through_runpy(tmp_path):
    app = make_app(tmp_path, FILES)
    archive = tmp_path / "app.csa"
    dumped = dump(archive, ["-m", "mypkg.mod", "an", "argument"], cwd=app)
    plain, archived, verbose = run_both(["-m", "mypkg.mod", "an", "argument"], archive, cwd=app)
    assert "run as main 42" in plain.stdout and "SourceFileLoader" in plain.stdout and dumped.stdout == plain.stdout
    assert_same_run(plain, archived)
    assert {"mypkg", "mypkg.mod"} <= served(verbose.stderr)


def test_run_code_string(tmp_path):
    app = make_app(tmp_path, FILES)
    archive = tmp_path / "app.csa"
    code = "import sys, mypkg.mod; print(mypkg.mod.double(4), sys.argv, repr(sys.path[0]))"
    dumped = dump(archive, ["-c", code, "x"], cwd=app)
    plain, archived, verbose = run_both(["-c", code, "x"], archive, cwd=app)
    assert dumped.stdout == plain.stdout == "8 ['-c', 'x'] ''\n"
    assert_same_run(plain, archived)
    assert "mypkg.mod" in served(verbose.stderr)


def test_dump_of_imports_only(tmp_path):
    app = make_app(tmp_path, FILES)
    archive = tmp_path / "app.csa"
    dump(archive, ["--import", "json", "mypkg.mod"], cwd=app)
    _, archived, verbose = run_both(["-c", "import json, mypkg.mod"], archive, cwd=app)
    assert archived.returncode == 0
    assert {"json", "json.decoder", "mypkg.mod"} <= served(verbose.stderr)
    assert os.path.getsize(archive) > 0
    # One that fails is reported as the import's own error, and nothing runs.
    failed = dump(tmp_path / "failed.csa", ["--import", "json", "nosuch", "--", "-c", "print('ran')"], cwd=app,
                  check=False)
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr == "ModuleNotFoundError: No module named 'nosuch'\n"
    assert not (tmp_path / "failed.csa").exists()


def test_a_program_that_ends_with_os_exit_is_dumped_by_its_own_process(tmp_path):
    # os._exit() skips atexit; a forked child's must not write its imports.
    code = ("import os, json\npid = os.fork()\nif pid == 0:\n    import textwrap\n    os._exit(0)\n"
            "os.waitpid(pid, 0)\nimport decimal\nprint('parent', flush=True)\nos._exit(3)\n")
    archive = tmp_path / "app.csa"
    dumped = dump(archive, ["-c", code], cwd=tmp_path, check=False)
    assert (dumped.returncode, dumped.stdout) == (3, "parent\n")
    names = archived_names(archive)
    assert {"json", "decimal"} <= set(names) and "textwrap" not in names
    plain, archived, verbose = run_both(["-c", code], archive, cwd=tmp_path)
    assert_same_run(plain, archived)
    assert {"json", "decimal"} <= served(verbose.stderr)


def test_a_forked_child_that_exits_normally_writes_no_archive(tmp_path):
    # It runs the atexit handlers it inherited, the dump's among them.
    code = ("import os, sys, json\npid = os.fork()\nif pid == 0:\n    import textwrap\n    sys.exit(0)\n"
            "os.waitpid(pid, 0)\nimport decimal\n")
    archive = tmp_path / "app.csa"
    dumped = dump(archive, ["-c", code], cwd=tmp_path, env={"CODESHARE_VERBOSE": "1"})
    assert dumped.stderr.count("codeshare: wrote") == 1, dumped.stderr
    names = archived_names(archive)
    assert {"json", "decimal"} <= set(names) and "textwrap" not in names


def test_the_dump_leaves_os_exit_where_pickle_and_posix_find_it(tmp_path):
    # A program may pickle os._exit (ProcessPoolExecutor.submit(os._exit, 1))
    # or call posix._exit, the same function under plain Python.
    code = ("import os, pickle, posix, json\n"
            "print(pickle.loads(pickle.dumps(os._exit)) is os._exit, os._exit is posix._exit,"
            " os._exit.__name__, flush=True)\nimport decimal\nposix._exit(3)\n")
    plain = run_python(["-c", code], cwd=tmp_path, check=False)
    assert (plain.returncode, plain.stdout) == (3, "True True _exit\n")
    archive = tmp_path / "app.csa"
    assert_same_run(plain, dump(archive, ["-c", code], cwd=tmp_path, check=False))
    names = archived_names(archive)
    assert {"json", "decimal"} <= set(names)


def test_an_interrupted_program_ends_the_dump_as_it_ends_python(tmp_path):
    # Ctrl-C: the traceback, the program's atexit handlers, then death by
    # SIGINT (130 in a shell), the archive written before it. (Not
    # run_python, which fails any process a signal ended.)
    code = ("import atexit, json, os, signal\natexit.register(print, 'atexit ran')\n"
            "os.kill(os.getpid(), signal.SIGINT)\nsignal.pause()\n")
    # Started with SIGINT at its default, which Python then handles: a shell
    # starts a background job with SIGINT ignored, and so its children.
    def interruptible():
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           preexec_fn=interruptible, timeout=60)
    dumped = subprocess.run([sys.executable, "-m", "codeshare", "dump", "-o", "app.csa", "-c", code],
                            capture_output=True, text=True, cwd=tmp_path, preexec_fn=interruptible, timeout=60)
    assert (plain.returncode, plain.stdout) == (-signal.SIGINT, "atexit ran\n")
    assert (dumped.returncode, dumped.stdout, dumped.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    names = archived_names(tmp_path / "app.csa")
    assert "json" in names


def test_a_program_that_replaces_itself_with_exec_is_dumped_before_the_exec(tmp_path):
    # An exec skips atexit too. execvp tries each PATH entry in turn: the
    # archive is written once, before the exec that can succeed.
    code = ("import os, sys, json\nimport decimal\n"
            f"os.environ['PATH'] = {str(tmp_path / 'missing')!r} + os.pathsep + os.path.dirname(sys.executable)\n"
            "os.execvp(os.path.basename(sys.executable), ['python', '-c', 'print(\"replaced\")'])\n")
    archive = tmp_path / "app.csa"
    dumped = dump(archive, ["-c", code], cwd=tmp_path, env={"CODESHARE_VERBOSE": "1"})
    assert dumped.stdout == "replaced\n"
    assert dumped.stderr.count("codeshare: wrote") == 1, dumped.stderr
    names = archived_names(archive)
    assert {"json", "decimal"} <= set(names)
    plain, archived, verbose = run_both(["-c", code], archive, cwd=tmp_path)
    assert_same_run(plain, archived)
    # An exec that fails shows its traceback as under plain Python.
    failing = f"import os, json\nos.execv({str(tmp_path / 'missing')!r}, ['x'])\n"
    plain = run_python(["-c", failing], cwd=tmp_path, check=False)
    assert "FileNotFoundError" in plain.stderr
    assert_same_run(plain, dump(tmp_path / "failing.csa", ["-c", failing], cwd=tmp_path, check=False))


def test_a_tracer_sees_the_same_frames_in_the_dumps_run(tmp_path):
    # bdb, coverage and trace follow the imports; the recorder, called as
    # importlib's functions return, must not show among their frames.
    code = ("import os, sys\nseen = set()\n"
            "def tracer(frame, event, arg):\n"
            "    seen.add(os.path.basename(frame.f_code.co_filename))\n"
            "sys.settrace(tracer)\nimport json\nsys.settrace(None)\nprint(sorted(seen))\n")
    plain = run_python(["-c", code], cwd=tmp_path)
    assert "__init__.py" in plain.stdout
    assert_same_run(plain, dump(tmp_path / "app.csa", ["-c", code], cwd=tmp_path))


def test_the_dump_leaves_the_exec_functions_what_they_are(tmp_path):
    # test_posix tests `os.execve in os.supports_fd` as its class body runs:
    # the dump's watch on execs must not replace os.execv or os.execve.
    code = ("import os\nprint(os.execve in os.supports_fd, os.execv in os.supports_fd,"
            " type(os.execv).__name__, os.execve.__module__)\n")
    plain = run_python(["-c", code], cwd=tmp_path)
    assert plain.stdout == "True False builtin_function_or_method posix\n"
    assert_same_run(plain, dump(tmp_path / "app.csa", ["-c", code], cwd=tmp_path))


def test_dump_leaves_out_the_codecs_imported_before_site(tmp_path):
    # The interpreter imports `encodings` and its stdio codecs before site.py
    # runs the start-up hook: never served, so not archived. A codec the
    # program imports is.
    app = make_app(tmp_path, {"main.py": "import encodings.idna\nprint('ok')\n"})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    names = set(archived_names(archive))
    assert "encodings.idna" in names
    assert not names & {"encodings", "encodings.aliases", "encodings.utf_8"}
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert_same_run(plain, archived)
    assert "encodings.idna" in served(verbose.stderr)


def test_modules_imported_while_site_runs_are_served_without_a_search(tmp_path):
    # sitecustomize (and what it imports) is searched for on sys.path as
    # site.py has it: without the program's sys.path[0], which comes after.
    app = make_app(tmp_path / "app", {"main.py": "import sitehelper\nprint(sitehelper.VALUE)\n"})
    custom = make_app(tmp_path / "custom", {"sitecustomize.py": "import sitehelper\n",
                                            "sitehelper.py": "VALUE = 'site'\n"})
    archive = tmp_path / "app.csa"
    env = {"PYTHONPATH": custom}
    dump(archive, ["main.py"], cwd=app, env=env)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=env)
    assert plain.stdout == "site\n"
    assert_same_run(plain, archived)
    assert {"sitecustomize", "sitehelper"} <= served(verbose.stderr)
    assert "the normal search" not in verbose.stderr


def test_modules_runpy_imports_for_the_dump_are_served_without_a_search(tmp_path):
    # `python -m codeshare dump` imports runpy, and with it collections,
    # functools..., before it execs the program; a `-c` program or script
    # (which never imports runpy) imports them itself, on its own sys.path,
    # in the dump's run as in a served one.
    app = tmp_path / "app"
    app.mkdir()
    archive = tmp_path / "app.csa"
    code = ["-c", "import collections, functools, contextlib; print(collections.OrderedDict.__module__)"]
    dump(archive, code, cwd=app)
    plain, archived, verbose = run_both(code, archive, cwd=app)
    assert plain.stdout == "collections\n"
    assert_same_run(plain, archived)
    assert {"collections", "functools", "contextlib"} <= served(verbose.stderr)
    assert "the normal search" not in verbose.stderr


def test_errors_and_warnings_while_importing_served_modules_show_as_in_plain_python(tmp_path):
    # The interpreter trims importlib's frames from the traceback of an
    # exception raised while importing, and `warnings` skips them to find the
    # importer: a frame of codeshare between them would show, keep them all,
    # or be taken for the importer (a DeprecationWarning then goes unseen).
    app = make_app(tmp_path / "app", {
        "main.py": "import warns, sys\n__import__(sys.argv[1])\n",
        "warns.py": "import warnings\nwarnings.warn('imported', DeprecationWarning, stacklevel=2)\n",
        "raises.py": "import textwrap\nraise ValueError('raised while importing')\n",
        "stale.py": "VALUE = 1\n",
    })
    archive = tmp_path / "app.csa"
    for module in ("raises", "stale"):
        dump(archive, ["main.py", module], cwd=app, check=False)
        if module == "stale":   # changed since the dump: compiled again, and fails
            (tmp_path / "app" / "stale.py").write_text("VALUE = (\n")
        plain, archived, verbose = run_both(["main.py", module], archive, cwd=app)
        assert plain.returncode == 1 and "main.py:1: DeprecationWarning: imported" in plain.stderr
        assert "importlib" not in plain.stderr and ("ValueError" in plain.stderr or "SyntaxError" in plain.stderr)
        assert_same_run(plain, archived)
        assert "warns" in served(verbose.stderr)
    assert "codeshare: fell back on stale: source changed since the dump" in verbose.stderr


def test_a_module_body_runs_as_deep_in_the_recursion_limit_as_under_plain_python(tmp_path):
    # The loader's methods are C methods around importlib's, which a call
    # through their descriptor counted towards the recursion limit: each
    # import nested in a served module's body took one level more, and a
    # program importing near the limit met a RecursionError plain Python
    # does not raise.
    levels = 8
    files = {
        "depth.py": "seen = []\n"
                    "def headroom(levels=0):\n"
                    "    try:\n"
                    "        return headroom(levels + 1)\n"
                    "    except RecursionError:\n"
                    "        return levels\n",
        "main.py": "import depth, level0\nprint(*depth.seen)\n",
    }
    for level in range(levels):
        nested = f"import level{level + 1}\n" if level + 1 < levels else ""
        files[f"level{level}.py"] = f"import depth\ndepth.seen.append(depth.headroom())\n{nested}"
    app = make_app(tmp_path / "app", files)
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    seen = [int(headroom) for headroom in plain.stdout.split()]
    assert len(seen) == levels and seen == sorted(seen, reverse=True), plain.stdout
    assert_same_run(plain, archived)
    assert {f"level{level}" for level in range(levels)} <= set(served(verbose.stderr))


def test_the_dump_shows_errors_and_warnings_while_importing_as_plain_python(tmp_path):
    # The recorder observes importlib from C: a frame of it between
    # importlib's kept them all in the traceback of a syntax error.
    app = make_app(tmp_path / "app", {
        "main.py": "import warns, sys\n__import__(sys.argv[1])\n",
        "warns.py": "import warnings\nwarnings.warn('imported', DeprecationWarning, stacklevel=2)\n",
        "broken.py": "VALUE = (\n",
        "raises.py": "import textwrap\nraise ValueError('raised while importing')\n",
    })
    for module, error in (("broken", "SyntaxError"), ("raises", "ValueError")):
        plain = run_python(["main.py", module], cwd=app, check=False)
        assert plain.returncode == 1 and "main.py:1: DeprecationWarning: imported" in plain.stderr
        assert "importlib" not in plain.stderr and error in plain.stderr
        assert_same_run(plain, dump(tmp_path / "app.csa", ["main.py", module], cwd=app, check=False))


SAFE_PATH = """import sys, json
print(sys.path[0], json.dumps([1]))
try:
    import helper
except ImportError:
    print('helper not importable')
"""


def test_the_dump_under_safe_path_leaves_sys_path_as_python_does(tmp_path):
    # -P (and -I, PYTHONSAFEPATH) put no directory of the program's first
    # on sys.path: the dump put one over its first entry.
    app = make_app(tmp_path / "app", {"main.py": SAFE_PATH, "helper.py": "print('helper imported')\n"})
    archive = tmp_path / "app.csa"
    for target in (["-c", SAFE_PATH], ["main.py"]):
        plain = run_python(["-P", *target], cwd=app, check=False)
        assert plain.returncode == 0 and "helper not importable" in plain.stdout, plain.stdout + plain.stderr
        assert_same_run(plain, run_python(["-P", "-m", "codeshare", "dump", "-o", str(archive), *target],
                                          cwd=app, check=False))
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, python_flags=["-P"])
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr) and "fell back" not in verbose.stderr.replace("fell back 0", "")


def test_the_dump_runs_a_program_on_the_modules_python_starts_it_with(tmp_path):
    # `python -m codeshare dump` imports runpy, collections, functools...
    # for itself, before it execs the program: a `-c` program or a script
    # does not find them loaded, as under plain Python, and the archive holds
    # only what the program imports.
    app = tmp_path / "app"
    app.mkdir()
    (app / "helper.py").write_text("VALUE = 1\n")
    archive = tmp_path / "app.csa"
    code = ["-c", "import sys, helper; print(sorted({'collections', 'functools', 'importlib', 'runpy',"
                  " 'warnings'} & set(sys.modules)))"]
    dumped = dump(archive, code, cwd=app)
    plain = run_python(code, cwd=app)
    assert dumped.stdout == plain.stdout == "[]\n"
    names = archived_names(archive)
    assert "helper" in names
    assert not {"collections", "functools", "importlib", "runpy", "warnings"} & set(names)


def test_the_dump_leaves_each_module_the_program_imports_to_be_loaded_once(tmp_path):
    # The dump's hook, which runs before the program, imported ast for itself
    # (and with it itertools, _functools...) and took them out of sys.modules:
    # the program loaded them a second time. ast gives _ast's classes their
    # deprecated accessors once a process, and the program's copy had none.
    # (_io's module is named io: both are loaded under plain Python too.)
    code = ["-c", "import ast, gc, sys\n"
                  "print(ast.Constant.n.fget.__globals__ is vars(ast), sorted({module.__name__ for module in"
                  " gc.get_objects() if type(module) is type(sys) and sys.modules.get(module.__name__)"
                  " not in (None, module)} - {'io'}))"]
    plain = run_python(code, cwd=tmp_path)
    assert plain.stdout == "True []\n", plain.stdout + plain.stderr
    assert dump(tmp_path / "app.csa", code, cwd=tmp_path).stdout == plain.stdout


def test_the_dump_runs_a_program_in_the_main_module_python_starts_it_in(tmp_path):
    # Its globals, in their order: the builtins module itself (not its dict),
    # `__annotations__`, and for `-c` a built-in module's loader.
    show = ("print(list(globals()), type(__builtins__).__name__, __annotations__,"
            " getattr(__loader__, '__name__', type(__loader__).__name__))\n")
    app = make_app(tmp_path / "app", {"main.py": show, "pkg/__init__.py": "", "pkg/__main__.py": show})
    for program in (["main.py"], ["-c", show], ["-m", "pkg"]):
        plain = run_python(program, cwd=app)
        assert "'__annotations__', '__builtins__'" in plain.stdout and " module {} " in plain.stdout
        assert_same_run(plain, dump(tmp_path / "app.csa", program, cwd=app))


STARTED = """import inspect, os, site, sys, traceback
print(sys.orig_argv[1:], sys.argv[1:], sys.flags.optimize, sys.flags.utf8_mode)
print([frame.function for frame in inspect.stack()], sys._getframe().f_back)
traceback.print_stack()
print(sorted(sys.modules), sorted(vars(site)))
print(sorted(name for name in os.environ if name.startswith('CODESHARE')))
"""


def test_the_dump_leaves_a_program_started_as_python_starts_it(tmp_path):
    # The dump execs the interpreter on the program, with the options given
    # before `-m codeshare`: the program's stack holds its own frames only,
    # sys.orig_argv is its command line, and it finds neither a module nor a
    # variable of the dump's.
    app = make_app(tmp_path / "app", {"main.py": STARTED, "pkg/__init__.py": "", "pkg/__main__.py": STARTED})
    # Under -I (no sys.path[0]) `-m pkg` fails, as under python.
    for options in ([], ["-O", "-X", "utf8"], ["-Omcodeshare"], ["-I"]):
        for program in (["main.py", "x"], ["-c", STARTED, "x"], ["-m", "pkg", "x"]):
            python_options = [option.removesuffix("mcodeshare") for option in options]
            plain = run_python([*python_options, *program], cwd=app, check=False)
            assert plain.returncode == (1 if options == ["-I"] and "-m" in program else 0), plain.stderr
            dump_command = [*options, "dump", "-o", str(tmp_path / "app.csa"), *program]
            if "-Omcodeshare" not in options:
                dump_command[len(options):len(options)] = ["-m", "codeshare"]
            assert_same_run(plain, run_python(dump_command, cwd=app, check=False))


def test_the_dump_runs_a_directory_or_a_zip_file_as_python_does(tmp_path):
    # `python DIRECTORY` and `python FILE.zip` run their __main__.py; the
    # dump opened the path as a script's source and failed.
    main = "import json, sys\nprint('main', json.dumps(sys.argv), __name__)\n"
    app = make_app(tmp_path / "app", {"appdir/__main__.py": main})
    with zipfile.ZipFile(os.path.join(app, "app.zip"), "w") as archive_file:
        archive_file.writestr("__main__.py", main)
    archive = tmp_path / "app.csa"
    for program in (["appdir", "x"], ["app.zip", "x"]):
        plain = run_python(program, cwd=app)
        assert plain.stdout == f'main ["{program[0]}", "x"] __main__\n'
        assert_same_run(plain, dump(archive, program, cwd=app))
        plain, archived, verbose = run_both(program, archive, cwd=app)
        assert_same_run(plain, archived)
        assert "json" in served(verbose.stderr)


def test_a_dump_that_could_not_record_stops_before_the_program_runs(tmp_path):
    # The interpreter the dump execs runs codeshare's hook only from
    # site-packages, and not under -S; it takes the options the interpreter
    # was given from sys.orig_argv, which a runpy call from a program does
    # not set for it. The program is not run for nothing.
    (tmp_path / "main.py").write_text("print('ran')\n")
    import codeshare
    installed = os.path.dirname(os.path.dirname(codeshare.__file__))
    copy = tmp_path / "elsewhere"
    shutil.copytree(os.path.join(installed, "codeshare"), copy / "codeshare")
    dump_command = ["dump", "-o", "app.csa", "main.py"]
    from_runpy = (f"import runpy, sys; sys.argv = ['codeshare', *{dump_command!r}]; "
                  "runpy.run_module('codeshare', run_name='__main__')")
    for arguments, env, problem in (
            (["-S", "-m", "codeshare", *dump_command], {"PYTHONPATH": installed},
             "-S leaves out site.py, which runs codeshare's start-up hook"),
            (["-m", "codeshare", *dump_command], {"PYTHONPATH": str(copy)},
             f"this codeshare ({copy}) is not installed in site-packages"),
            (["-c", from_runpy], {}, "sys.orig_argv does not show how the interpreter was started")):
        result = run_python(arguments, cwd=tmp_path, env=env, check=False)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.startswith(f"codeshare: cannot dump: {problem}") and result.stderr.count("\n") == 1
        assert not (tmp_path / "app.csa").exists()


def test_cached_follows_the_pycache_prefix_of_the_run(tmp_path):
    # The dump records each module's __cached__; a run with another pycache
    # prefix, from the environment or set by the program, gets its own.
    app = make_app(tmp_path / "app", {
        "main.py": "import sys\nif len(sys.argv) > 1: sys.pycache_prefix = sys.argv[1]\n"
                   "import helper\nprint(helper.__cached__)\n",
        "helper.py": "VALUE = 1\n"})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    prefix = str(tmp_path / "prefix")
    for target, env in ((["main.py"], {}), (["main.py"], {"PYTHONPYCACHEPREFIX": prefix}),
                        (["main.py", prefix], {})):
        plain, archived, verbose = run_both(target, archive, cwd=app, env=env)
        assert_same_run(plain, archived)
        assert "helper" in served(verbose.stderr)
        assert plain.stdout.startswith(prefix if target[1:] or env else os.path.join(app, "__pycache__"))


SUBINTERPRETER = """
import snapshot
import _xxsubinterpreters as interpreters
interpreter = interpreters.create()
interpreters.run_string(interpreter, "import textwrap, json; print(textwrap.dedent('  sub'), json.dumps(1), flush=True)")
interpreters.destroy(interpreter)
import argparse, textwrap
print(textwrap.dedent('  main'), argparse.__name__)
"""


def test_a_subinterpreter_that_ran_the_hook_and_ended_leaves_the_main_one_served(tmp_path):
    # A subinterpreter runs site.py, and with it the hook, with an importlib
    # of its own, which is cleared when it ends.
    app = make_app(tmp_path / "app", {"main.py": SUBINTERPRETER})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert "sub 1\nmain argparse\n" in plain.stdout
    assert_same_run(plain, archived)
    assert "argparse" in served(verbose.stderr)


SPECS = """
import importlib.machinery, importlib.util, sys
found = importlib.util.find_spec("colorsys")
print(found.loader == importlib.machinery.SourceFileLoader("colorsys", found.origin),
      importlib.machinery.SourceFileLoader("colorsys", found.origin) == found.loader)
import colorsys, pydoc
print(colorsys.__spec__ == found, found == colorsys.__spec__, hash(found.loader) == hash(colorsys.__loader__))
print(pydoc.importfile(colorsys.__file__).__spec__ == colorsys.__spec__)
import body
lazy = importlib.util.find_spec("lazybody")
lazy.loader = importlib.util.LazyLoader(lazy.loader)
module = sys.modules["lazybody"] = importlib.util.module_from_spec(lazy)
lazy.loader.exec_module(module)
print("lazybody", module.ran)
"""

# What a module's body sees of its loader, printed as it runs.
BODY = """import importlib.machinery, re
print(__name__, type(__loader__) is importlib.machinery.SourceFileLoader, type(__spec__.loader).__name__,
      sorted(vars(__loader__)), re.sub(" at 0x[0-9a-f]+", "", repr(__spec__)).replace(__file__, "FILE"))
ran = True
"""


def test_specs_and_loaders_of_served_modules_are_those_plain_import_makes(tmp_path):
    # A spec found before the import holds codeshare's loader, which
    # compares as a SourceFileLoader; from the moment it gives the module's
    # code it is one, so the body (also one a LazyLoader runs) sees plain's.
    app = make_app(tmp_path / "app", {"main.py": SPECS, "body.py": BODY, "lazybody.py": BODY})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout.startswith("True True\nTrue True True\nTrue\nbody True SourceFileLoader ['name', 'path'] "
                                   "ModuleSpec(name='body', loader=<_frozen_importlib_external.SourceFileLoader object>, "
                                   "origin='FILE')\nlazybody True SourceFileLoader"), plain.stderr
    assert plain.stdout.endswith("\nlazybody True\n"), plain.stdout
    assert_same_run(plain, archived)
    assert {"colorsys", "pydoc", "body", "lazybody"} <= served(verbose.stderr)


def test_a_package_whose_init_is_an_extension_module_is_served_as_a_package(tmp_path):
    # mypyc and Cython compile a package's __init__ too, and FileFinder
    # takes an extension __init__ before __init__.py. Its location was
    # served as a module's: no __path__, and its submodules not found.
    app = make_app(tmp_path / "app", {
        "_statistics/__init__.py": "raise ImportError('the extension __init__ comes first')\n",
        "_statistics/extra.py": "VALUE = 'extra'\n",
        "main.py": "import json, _statistics, _statistics.extra\n"
                   "spec = _statistics.__spec__\n"
                   "print(spec.submodule_search_locations == _statistics.__path__, spec.parent, spec.cached,\n"
                   "      _statistics.extra.VALUE, callable(_statistics._normal_dist_inv_cdf))\n",
    })
    compiled = importlib.util.find_spec("_statistics").origin
    shutil.copy(compiled, os.path.join(app, "_statistics", "__init__" + importlib.machinery.EXTENSION_SUFFIXES[0]))
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "True _statistics None extra True\n", plain.stdout + plain.stderr
    assert_same_run(plain, archived)
    assert "codeshare: served the location of _statistics" in verbose.stderr
    assert {"json", "_statistics.extra"} <= served(verbose.stderr)


def test_a_program_that_changes_directory_is_dumped_and_served_by_relative_paths(tmp_path):
    # `-o` and CODESHARE_ARCHIVE name files from the directory the command
    # started in, whatever directory the program moves to.
    app = make_app(tmp_path, {"main.py": "import os, json\nos.chdir('elsewhere')\n"
                                         "import decimal, textwrap\nprint(decimal.Decimal(1) / 3)\n",
                              "elsewhere/placeholder": ""})
    dump("app.csa", ["main.py"], cwd=app)
    assert os.path.exists(os.path.join(app, "app.csa")) and not os.path.exists(os.path.join(app, "elsewhere", "app.csa"))
    plain, archived, verbose = run_both(["main.py"], "app.csa", cwd=app)
    assert_same_run(plain, archived)
    assert {"decimal", "textwrap"} <= served(verbose.stderr)
    assert "fell back on" not in verbose.stderr
