"""Acceptance: programs behave exactly as without codeshare, and every
module loaded from source is served from the archive."""
import os

import pytest

from conftest import run_python
from importing import (archived_names, assert_same_run, backdate_bytecode, dump, make_app, run_both, served,
                       source_modules, without_snapshot)

PROGRAMS = {
    "stdlib": """
import argparse, json, email.parser, http.client, decimal, logging, textwrap, sqlite3, csv, dataclasses, typing
import urllib.request, xml.etree.ElementTree as ET, zipfile, tarfile, pathlib, unittest, asyncio
parser = argparse.ArgumentParser(); parser.add_argument("--n", type=int, default=3)
print(json.dumps({"n": parser.parse_args([]).n, "d": str(decimal.Decimal("1.1") * 3)}))
print(ET.fromstring("<a><b>x</b></a>").find("b").text, textwrap.shorten("hello world " * 5, 20))
""",
    "rich": """
import rich.console, rich.table
table = rich.table.Table("a", "b"); table.add_row("1", "2")
rich.console.Console(width=40, force_terminal=False, color_system=None).print(table)
""",
    "pygments": """
import pygments, pygments.lexers, pygments.formatters
print(pygments.highlight("def f(): return 1", pygments.lexers.PythonLexer(), pygments.formatters.HtmlFormatter()))
""",
    "jinja2": """
import jinja2
print(jinja2.Environment().from_string("{% for x in xs %}{{ x * 2 }},{% endfor %}").render(xs=[1, 2, 3]))
""",
    "click": """
import click
@click.command()
@click.option("--count", default=2)
def hello(count):
    click.echo("hello " * count)
hello(["--count", "3"], standalone_mode=False)
""",
    "docutils": """
import docutils.core
print(docutils.core.publish_string("Title\\n=====\\n\\n*text*", writer_name="html")[:80])
""",
    "sqlalchemy": """
import sqlalchemy
engine = sqlalchemy.create_engine("sqlite://")
with engine.connect() as connection:
    print(connection.execute(sqlalchemy.text("select 1 + 1")).scalar())
""",
    "networkx": """
import networkx
graph = networkx.path_graph(5)
print(networkx.shortest_path(graph, 0, 4), networkx.is_connected(graph))
""",
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_behaves_the_same_and_is_served(name, tmp_path):
    app = make_app(tmp_path, {"main.py": "import snapshot\n" + PROGRAMS[name]})
    archive = tmp_path / "app.csa"
    dumped = dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.returncode == 0, plain.stderr
    # The dump itself ran the program as Python would (its own modules aside).
    assert without_snapshot(dumped.stdout) == without_snapshot(plain.stdout)
    assert dumped.stderr == plain.stderr
    assert_same_run(plain, archived)
    expected = source_modules(plain.stdout)
    assert len(expected) > 10
    missing = expected - served(verbose.stderr)
    assert not missing, f"not served: {sorted(missing)}\n{verbose.stderr[-3000:]}"
    assert "fell back" not in verbose.stderr.replace("fell back 0", "")


def test_exit_status_and_uncaught_exception_are_kept(tmp_path):
    app = make_app(tmp_path, {
        "exits.py": "import sys, json\nprint('out'); print('err', file=sys.stderr); sys.exit(3)\n",
        "raises.py": "import textwrap\ndef fail():\n    raise ValueError('boom')\nfail()\n",
    })
    for script, status in (("exits.py", 3), ("raises.py", 1)):
        archive = tmp_path / f"{script}.csa"
        dumped = dump(archive, [script], cwd=app, check=False)
        plain, archived, _ = run_both([script], archive, cwd=app)
        assert plain.returncode == dumped.returncode == status
        assert without_snapshot(dumped.stdout) == without_snapshot(plain.stdout)
        assert dumped.stderr == plain.stderr
        assert_same_run(plain, archived)
        assert archive.exists(), "the archive is written also on sys.exit() and exceptions"


def test_a_name_the_program_interned_first_stays_its_object_with_its_references(tmp_path):
    # The program interns a name before the archived module that uses it
    # arrives: every slot naming it must hold the program's own object, with
    # a reference of its own, as unmarshalled code would.
    functions = "".join(f"def f{index}(holder):\n    return holder.codeshare_probe_name\n" for index in range(20))
    app = make_app(tmp_path, {
        "probe.py": functions + "def local():\n    codeshare_probe_name = 1\n    return codeshare_probe_name\n"
                    + f"FUNCTIONS = [{', '.join(f'f{index}' for index in range(20))}, local]\n",
        "main.py": "import gc, sys, types\n"
                   "name = sys.intern(''.join(['codeshare_', 'probe_name']))\n"
                   "before = sys.getrefcount(name)\n"
                   "import probe\n"
                   "print('references', sys.getrefcount(name) - before)\n"
                   "codes = [function.__code__ for function in probe.FUNCTIONS]\n"
                   "print('same object', all(name in code.co_names + code.co_varnames for code in codes),\n"
                   "      all(any(each is name for each in code.co_names + code.co_varnames) for code in codes))\n"
                   "del name\n"
                   "gc.collect()\n"
                   "reuse = [str(number) * 9 for number in range(200000)]\n"
                   "print(sorted({each for code in codes for each in code.co_names + code.co_varnames}))\n"
                   "print(probe.f7(types.SimpleNamespace(codeshare_probe_name='found')), probe.local())\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert "same object True True" in plain.stdout, plain.stdout + plain.stderr
    assert "probe" in served(verbose.stderr)
    assert_same_run(plain, archived)


def test_the_interpreters_objects_named_by_later_modules_get_a_reference_in_each(tmp_path):
    # Two modules name what the program interned first, a string the archive
    # pools, and a small int, an object the interpreter has. The second is
    # prepared after the first's import has interned the string, so its
    # slots naming it are pointed at the program's object as they are read;
    # each slot naming either must still get a reference of its own, as
    # unmarshalled code's do.
    # Each function's names and constants are tuples of its own: ten references a module.
    uses = "".join(f"def f{index}(holder):\n"
                   f"    return holder.codeshare_shared_name or holder.other{index}, holder.number + 201, {index}\n"
                   for index in range(10))
    app = make_app(tmp_path, {
        "first.py": uses,
        "second.py": uses,
        "main.py": "import gc, sys, types\n"
                   "name = sys.intern(''.join(['codeshare_', 'shared_name']))\n"
                   "import first\n"
                   # Enough imports between that the read-ahead thread, a
                   # window ahead, reads `second` after `first` has run.
                   "import json, argparse, email.parser, http.client, unittest, xml.dom.minidom, zipfile, asyncio\n"
                   "before = sys.getrefcount(name), sys.getrefcount(201)\n"
                   "import second\n"
                   "print('references', sys.getrefcount(name) - before[0], sys.getrefcount(201) - before[1])\n"
                   "del name\n"
                   "gc.collect()\n"
                   "reuse = [str(number) * 9 for number in range(200000)]\n"
                   "holder = types.SimpleNamespace(codeshare_shared_name='found', number=1)\n"
                   "print(first.f3(holder), second.f7(holder))\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    for read_ahead in ("on", "off"):
        plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"CODESHARE_READAHEAD": read_ahead})
        assert "references 10 10\n" in plain.stdout, plain.stdout + plain.stderr
        assert {"first", "second"} <= served(verbose.stderr)
        assert_same_run(plain, archived)


def test_an_int_in_many_constants_gets_a_reference_for_each(tmp_path):
    # Twenty slots (of twenty distinct co_consts) name the same small int,
    # an object the interpreter has: the reader fills them together and must
    # count each, as unmarshalled code would.
    app = make_app(tmp_path, {
        "probe.py": "".join(f"def f{index}(x):\n    return x + 201, 'f{index}'\n" for index in range(20)),
        "main.py": "import sys\n"
                   "before = sys.getrefcount(201)\n"
                   "import probe\n"
                   "print('references', sys.getrefcount(201) - before, probe.f3(1))\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert "references 20 (202, 'f3')" in plain.stdout, plain.stdout + plain.stderr
    assert "probe" in served(verbose.stderr)
    assert_same_run(plain, archived)


DESCRIPTORS = """
import os, sys
def descriptors():
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
import argparse, email.parser, http.client, decimal, json, logging, unittest, asyncio
print("after imports", descriptors())
with open(sys.executable, "rb") as file:
    print("opened", file.fileno())
os.closerange(3, 1024)   # as a daemon does
import xml.etree.ElementTree, zipfile, tarfile, csv, sqlite3
print("after closerange", descriptors(), xml.etree.ElementTree.fromstring("<a>ok</a>").text)
"""


def test_the_program_has_the_file_descriptors_it_has_under_plain_python(tmp_path):
    # codeshare holds the archive open only while it reads a module (the
    # read-ahead thread, off here, may be reading when the program looks),
    # and goes on serving after a daemon's closerange.
    app = make_app(tmp_path / "app", {"main.py": DESCRIPTORS})
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env={"CODESHARE_READAHEAD": "off"})
    assert "after closerange" in plain.stdout
    assert_same_run(plain, archived)
    assert {"xml.etree.ElementTree", "zipfile", "sqlite3"} <= served(verbose.stderr)
    assert "fell back" not in verbose.stderr.replace("fell back 0", "")
    # A process that imports nothing itself (what site.py imports aside,
    # served too) from an archive big enough to read ahead starts no thread
    # and holds no file open: a child that lists its descriptors.
    big = run_python(["-c", f"import codeshare.archive; print(codeshare.archive.open({str(archive)!r}).read_ahead())"])
    assert big.stdout == "True\n"
    child = ["-c", "import os; print(sorted(os.listdir('/proc/self/fd')), len(os.listdir('/proc/self/task')))"]
    plain, archived, verbose = run_both(child, archive, cwd=app)
    assert_same_run(plain, archived)
    assert served(verbose.stderr), "site.py's imports are served"


def test_constants_the_compiler_shared_stay_one_object(tmp_path):
    # The compiler merges equal constants across a module, a set's
    # elements included, and marshal keeps them one object.
    app = make_app(tmp_path, {
        "probe.py": "def f2():\n    return ('not a name',)\n"
                    "def f3(x):\n    return x in {('not a name',)}\n"
                    "def f4(x):\n    return x in {('a', 1)}, ('a', 1)\n",
        "main.py": "import probe\n"
                   "print(next(iter(probe.f3.__code__.co_consts[1])) is probe.f2.__code__.co_consts[1],\n"
                   "      next(iter(probe.f4.__code__.co_consts[1])) is probe.f4.__code__.co_consts[2])\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "True True\n", plain.stdout + plain.stderr
    assert "probe" in served(verbose.stderr)
    assert_same_run(plain, archived)


def test_equal_constants_of_two_modules_stay_two_objects(tmp_path):
    # Plain import gives each module its own copy of a constant; only
    # interned strings are one object across modules. The archive had kept
    # one copy of each equal constant, which `is` and pickle's memo showed.
    constants = "S = 'not a name'\nN = 123456789\nF = 2.5\nB = b'some bytes'\nC = 1j\nI = 'a_name'\n"
    app = make_app(tmp_path, {
        "one.py": constants,
        "two.py": constants,
        "main.py": "import one, two, pickle\n"
                   "print([getattr(one, name) is getattr(two, name) for name in 'SNFBCI'])\n"
                   "print(len(pickle.dumps([one.S, two.S])))\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout.startswith("[False, False, False, False, False, True]\n"), plain.stdout + plain.stderr
    assert {"one", "two"} <= served(verbose.stderr)
    assert_same_run(plain, archived)


def test_each_load_of_a_module_gets_new_code_objects(tmp_path):
    # As plain import unmarshals the .pyc at each load. The archive had
    # given a module's second load and every later one the same code.
    app = make_app(tmp_path, {
        "helper.py": "def function():\n    return 'helper'\n",
        "main.py": "import importlib, sys\n"
                   "import helper\n"
                   "codes = [helper.function.__code__]\n"
                   "del sys.modules['helper']\n"
                   "import helper\n"
                   "codes.append(helper.function.__code__)\n"
                   "for _ in range(2):\n"
                   "    codes.append(importlib.reload(helper).function.__code__)\n"
                   "print(len(set(map(id, codes))), helper.function())\n",
    })
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "4 helper\n", plain.stdout + plain.stderr
    assert_same_run(plain, archived)
    assert "helper" in served(verbose.stderr)
    assert verbose.stderr.count("fell back on helper: loaded before in this process") == 3


def test_a_module_whose_source_compiles_with_a_warning_warns_as_under_plain_python(tmp_path):
    # Where no .pyc can be written, plain import compiles the source at each
    # start and the compiler's warning shows each time (an error under -W
    # error). The archive had served the module's code without a word.
    app = make_app(tmp_path, {
        "warns.py": "def one(x):\n    return x is 1\n",
        "main.py": "import json, warns\nprint(warns.one(1), json.dumps(1))\n",
    })
    archive = tmp_path / "app.csa"
    environment = {"PYTHONDONTWRITEBYTECODE": "1"}
    dumped = dump(archive, ["main.py"], cwd=app, env={**environment, "CODESHARE_VERBOSE": "1"})
    assert "left warns to plain import: its source compiles with a warning" in dumped.stderr
    for flags in ((), ("-W", "error")):
        plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=environment, python_flags=flags)
        assert "SyntaxWarning" in plain.stderr or "SyntaxError" in plain.stderr, plain.stderr
        assert_same_run(plain, archived)
        assert "json" in served(verbose.stderr)
        assert "not in the archive: warns" in verbose.stderr


@pytest.mark.parametrize("child", ["reports", "reports where the program ignores SIGCHLD", "is killed",
                                   "is not forked where the program handles SIGCHLD",
                                   "is not forked while another thread runs Python",
                                   "is not forked from a program of 700 MB"])
def test_a_large_programs_sources_are_checked_for_warnings_in_forked_children_with_the_same_outcome(tmp_path, child):
    # Compiling each source to see whether it warns is most of a large
    # program's dump: the sources are shared among the dump's process and a
    # child forked per spare CPU (reaped for the program that ignores
    # SIGCHLD: its report tells). One that does not report (killed) has its
    # share checked in the dump's process, as has every share where the
    # program handles SIGCHLD (its handler would run), while another thread
    # runs Python (it may hold a lock a child would wait on for ever), and
    # where the program is so large that forking it (copying its page
    # tables) costs more than the child would save. The program's audit
    # hook sees the children's compiles.
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: the dump forks no child")
    # Largest first, each to the share with the fewest bytes: each share
    # gets modules that warn (the even ones) and modules that do not.
    modules = {f"m{index}.py": "".join(f"v{line} = {line}\n" for line in range(12000 - 500 * index))
               + ("def one(x):\n    return x is 1\n" if index % 2 == 0 else "") for index in range(8)}
    app = make_app(tmp_path, {**modules, "main.py": (
        "import os, signal, sys, threading, time\n"
        "main, log = os.getpid(), os.open('compiled-elsewhere', os.O_WRONLY | os.O_CREAT | os.O_APPEND)\n"
        "def hook(event, arguments):\n"
        "    if event == 'compile' and os.getpid() != main:\n"
        "        os.write(log, b'%d\\n' % os.getpid())\n"
        f"        if {child == 'is killed'}:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "sys.addaudithook(hook)\n"
        f"if {child.endswith('ignores SIGCHLD')}:\n"
        "    signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        f"if {child.endswith('handles SIGCHLD')}:\n"
        "    signal.signal(signal.SIGCHLD, lambda number, frame: print('SIGCHLD'))\n"
        f"if {child.endswith('thread runs Python')}:\n"
        "    threading.Thread(target=lambda: [time.sleep(0.001) for _ in iter(int, 1)], daemon=True).start()\n"
        f"held = bytearray(b'x') * ({child.endswith('700 MB')} * 700 << 20)\n"
        "import m0, m1, m2, m3, m4, m5, m6, m7\n"
        "print(m0.one(1), m7.v10)\n")})
    archive = tmp_path / "app.csa"
    dumped = dump(archive, ["main.py"], cwd=app, env={"CODESHARE_VERBOSE": "1"})
    compiled_elsewhere = (tmp_path / "compiled-elsewhere").read_text()
    assert bool(compiled_elsewhere) != ("not forked" in child), compiled_elsewhere
    for index in range(8):
        assert (f"left m{index} to plain import" in dumped.stderr) == (index % 2 == 0), dumped.stderr
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert plain.stdout == "True 10\n", plain.stderr
    assert_same_run(plain, archived)
    assert served(verbose.stderr) >= {"m1", "m3", "m5", "m7"}
    assert all(f"not in the archive: m{index}" in verbose.stderr for index in (0, 2, 4, 6))


# Constant sets of ints, whose hashes are their own, and of strs, whose
# hashes PYTHONHASHSEED sets. The compiler's last step, under seed 0, leaves
# the order of the sets of names below as it is, and under most of seeds 1-6
# not (their suffixes are chosen so); it runs where the code object finds
# another str of a name: main.py interns METHODS' first; FRESH's are interned
# nowhere; one of IDENTIFIER's is an identifier of sets.py, whose str the
# parser interned; one of KEYWORD's is too, but the compiler merged the set's
# str with it first, as the name of a keyword argument.
METHODS = ("parse_obj", "parse_raw", "parse_file", "from_orm", "construct", "schema", "schema_json", "validate",
           "update_forward_refs", "_get_value")
FRESH, IDENTIFIER, KEYWORD = (tuple(f"{name}_{suffix}" for name in METHODS) for suffix in ("fresh185", "attr119", "kw45"))
CONSTANT_SETS_APP = {
    "sets.py": "NAMES = {%s}\n"
               "IGNORED = {'directed', 'multigraph', 'node', 'edge'}\n"
               "METHODS = {%s}\n"
               "def collide():\n"
               "    return [x for x in {16, 8, 0, 1}], 8 in {24, 8, 0}, list({3, 11, 19, 2, 10})\n"
               "FRESH = {%s}\n"
               "class Holder:\n"
               "    %s = 1\n"
               "IDENTIFIER = {%s}\n"
               "options = dict(%s=1)\n"
               "KEYWORD = {%s}\n"
               % (", ".join(repr(f"name{index}") for index in range(40)), ", ".join(map(repr, METHODS)),
                  ", ".join(map(repr, FRESH)), IDENTIFIER[0], ", ".join(map(repr, IDENTIFIER)), KEYWORD[0],
                  ", ".join(map(repr, KEYWORD))),
    "main.py": "KEYS = ('directed', 'multigraph', 'node', 'edge')\n"
               f"METHODS = {METHODS!r}\n"
               "import json, sets\n"
               "print(*sets.collide(), list(sets.IGNORED), list(sets.NAMES), list(sets.METHODS), list(sets.FRESH),\n"
               "      list(sets.IDENTIFIER), list(sets.KEYWORD))\n",
}


def test_constant_sets_iterate_as_under_plain_python_with_a_pyc_and_without(tmp_path):
    # The compiler inserts a set's constants in the order of the source, then
    # again in that set's order (and once more where the strs it interns were
    # interned before: main.py's), a .pyc's load in the order marshal wrote
    # them: elements that collide in the table then take other slots, and the
    # set iterates otherwise. The archive gave the .pyc's order where plain
    # import compiles the source at each start (no .pyc can be written).
    app = make_app(tmp_path, CONSTANT_SETS_APP)
    archive = tmp_path / "app.csa"
    outputs = []
    for written in ("1", ""):   # no .pyc, then the one the dump writes
        environment = {"PYTHONDONTWRITEBYTECODE": written, "PYTHONHASHSEED": "0"}
        dump(archive, ["main.py"], cwd=app, env=environment)
        plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=environment)
        assert_same_run(plain, archived)
        assert "sets" in served(verbose.stderr)
        outputs.append(plain.stdout)
    # Compiled, IGNORED went through the three insertions (under seed 0 each
    # gives another order).
    assert outputs[0].startswith("[16, 8, 0, 1] True [2, 3, 19, 10, 11] ['directed', 'multigraph', 'edge', 'node']")
    assert outputs[1].startswith("[0, 1, 8, 16] True"), outputs


def test_constant_sets_a_module_compiles_at_each_start_iterate_as_the_compiler_makes_them_under_any_seed(tmp_path):
    # The archive held the order the compiler's steps gave the strs under the
    # dump's PYTHONHASHSEED; inserted in that order under another seed, they
    # took other slots where they collide, and the set iterated otherwise
    # than the compiler's steps make it under that seed. Where its last step
    # changes nothing under the dump's seed, the set was taken to have had
    # it if it held a name: FRESH and KEYWORD iterated otherwise than plain.
    app = make_app(tmp_path, CONSTANT_SETS_APP)
    archive = tmp_path / "app.csa"
    environment = {"PYTHONDONTWRITEBYTECODE": "1"}
    dump(archive, ["main.py"], cwd=app, env={**environment, "PYTHONHASHSEED": "0"})
    for seed in range(1, 7):
        plain, archived, verbose = run_both(["main.py"], archive, cwd=app,
                                            env={**environment, "PYTHONHASHSEED": str(seed)})
        assert_same_run(plain, archived)
        assert "sets" in served(verbose.stderr)


def test_a_constant_set_of_a_name_only_an_earlier_module_body_held_iterates_as_under_plain_python(tmp_path):
    # Plain Python frees a module's code once its body has run, and with it a
    # name only that code held (an import under `if TYPE_CHECKING:`). The
    # dump keeps each module's code to write it, and the name stayed
    # interned: compiling later.py, the dump's compiler made its set a last
    # time as it found the name, plain Python's does not, and the archive
    # held the dump's set.
    app = make_app(tmp_path, {
        "early.py": "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    import only_imported_79\n",
        "later.py": "PACKAGES = {'only_imported_79', 'email-validator', 'pydantic-extra-types', 'pydantic-settings',\n"
                    "            'typing-inspect', 'mypy-extensions', 'annotated-types'}\n",
        "main.py": "import json, early, later\nprint(list(later.PACKAGES))\n",
    })
    archive = tmp_path / "app.csa"
    for seed in ("0", "2"):   # seeds under which the last step changes the set's order
        environment = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": seed}
        dump(archive, ["main.py"], cwd=app, env=environment)
        plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=environment)
        assert_same_run(plain, archived)
        assert "later" in served(verbose.stderr)


@pytest.mark.parametrize("pyc", ["written by the dump's run", "older than the dump"])
def test_constant_sets_of_a_module_read_from_its_pyc_iterate_as_its_pyc_loads_them(tmp_path, pyc):
    # A .pyc holds a set's elements sorted by their marshal bytes, which flag
    # each object referenced more than once as the .pyc was written. The dump
    # sorted them again as it wrote the archive, when the set the module body
    # made of the constant (CODES) also referenced the large ints: other
    # flags, another order, and other slots where elements collide.
    app = make_app(tmp_path, {
        "sets.py": "CODES = {7, 15, 1007, 2031}\n"
                   "def members():\n"
                   "    return [x for x in {7, 15, 1007, 2031}]\n",
        "main.py": "import json, sets\nprint(list(sets.CODES), sets.members())\n",
    })
    archive = tmp_path / "app.csa"
    if pyc == "older than the dump":
        backdate_bytecode(app, "sets")
    environment = {"PYTHONDONTWRITEBYTECODE": ""}   # the dump's run writes the .pyc the runs read
    dump(archive, ["main.py"], cwd=app, env=environment)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=environment)
    assert plain.stdout == "[2031, 7, 15, 1007] [2031, 7, 15, 1007]\n", plain.stdout + plain.stderr
    assert_same_run(plain, archived)
    assert "sets" in served(verbose.stderr)


@pytest.mark.parametrize("pyc", ["written by the dump's run", "older than the dump"])
def test_constant_sets_of_a_module_read_from_its_pyc_iterate_as_its_pyc_loads_them_whatever_the_program_interned(
        tmp_path, pyc):
    # Marshal stores a set's elements sorted by their marshal bytes, which
    # flag each interned str. The dump sorted them again as it wrote the
    # archive, when the program had since interned '~': sorted first, it
    # went in first, and where the elements collide they took other slots
    # than the .pyc's load gives them.
    app = make_app(tmp_path, {
        "chars.py": "def members():\n    return [c for c in {'~', '`', '|'}]\n",
        "main.py": "import json, sys, chars\nsys.intern(chr(126))\nprint(chars.members())\n",
    })
    archive = tmp_path / "app.csa"
    if pyc == "older than the dump":
        backdate_bytecode(app, "chars")
    for seed in ("0", "1"):   # seeds under which the two orders give two sets
        environment = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONHASHSEED": seed}
        dump(archive, ["main.py"], cwd=app, env=environment)
        plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=environment)
        assert_same_run(plain, archived)
        assert "chars" in served(verbose.stderr)


def test_a_one_character_str_the_compiler_made_is_its_own_object_as_under_plain_python(tmp_path):
    # The compiler turns a %-format into an f-string, and the '%' it makes of
    # a '%%' is a str of its own; a .pyc's load gives the interpreter's own
    # '%'. The archive gave the interpreter's own where plain import compiles
    # the module at each start.
    app = make_app(tmp_path, {
        "fmt.py": "def f(w):\n    return '%%%s' % (w,)\n",
        "main.py": "import json, fmt\nprint(fmt.f(3), [c is chr(37) for c in fmt.f.__code__.co_consts if c == '%'])\n",
    })
    archive = tmp_path / "app.csa"
    outputs = []
    for written in ("1", ""):   # no .pyc, then the one the dump's run compiles the source for and writes
        environment = {"PYTHONDONTWRITEBYTECODE": written}
        dump(archive, ["main.py"], cwd=app, env=environment)
        plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=environment)
        assert_same_run(plain, archived)
        assert "fmt" in served(verbose.stderr)
        outputs.append(plain.stdout)
    assert outputs == ["%3 [False]\n", "%3 [True]\n"], outputs


def test_a_module_whose_compiling_imports_unicodedata_imports_it_as_under_plain_python(tmp_path):
    # The compiler imports unicodedata to normalize a name that is not ASCII
    # and to look up the character of a \\N{...} escape, and plain import
    # compiles a module at each start where it reads no .pyc. Its archived
    # code needs no compiling: the module ran without unicodedata imported.
    app = make_app(tmp_path, {
        "named.py": "größe = 3\n".encode(),
        "escaped.py": "DASH = f'\\N{EM DASH}{1}'\n",
        # Neither a name nor a str literal's escape: raw, bytes, escaped backslash, text.
        "neither.py": "# größe\nTEXT = r'\\N{EM DASH}', b'\\\\N', '\\\\N{EM DASH}', 'größe'\n".encode(),
        "main.py": "import importlib, json, sys\n"
                   "for name in sys.argv[1:]:\n"
                   "    importlib.import_module(name)\n"
                   "    print(name, 'unicodedata' in sys.modules, list(sys.modules)[-2:])\n",
    })
    archive = tmp_path / "app.csa"
    environment = {"PYTHONDONTWRITEBYTECODE": "1"}
    dump(archive, ["main.py", "neither", "named", "escaped"], cwd=app, env=environment)
    for modules in (["neither", "named"], ["neither", "escaped"]):
        plain, archived, verbose = run_both(["main.py", *modules], archive, cwd=app, env=environment)
        assert plain.stdout.startswith("neither False "), plain.stdout + plain.stderr
        assert plain.stdout.endswith(f"\n{modules[1]} True ['unicodedata', '{modules[1]}']\n"), plain.stdout
        assert_same_run(plain, archived)
        assert set(modules) <= served(verbose.stderr)


def test_a_module_whose_coding_line_names_a_codec_looks_it_up_as_under_plain_python(tmp_path):
    # The tokenizer decodes a source through the codec its coding line names,
    # which imports the codec's module the first time in a process, but for
    # UTF-8, Latin-1 and ASCII, which it decodes itself under names it
    # normalizes; plain import compiles a module at each start where it reads
    # no .pyc. Its archived code needs no decoding: the module ran without
    # the codec's module imported.
    app = make_app(tmp_path, {
        "western.py": b"#!/usr/bin/env python\n# -*- coding: cp1252 -*-\nSIGN = '\x80'\n",
        "greek.py": b"# vim: set fileencoding=ISO-8859-7 :\nALPHA = '\xe1'\n",
        # Decoded without a codec: Latin-1 and ASCII by other names; a coding
        # comment below code, and on the third line.
        "plain.py": b"# coding: Latin_1\nTEXT = '\xe9'\n",
        "ascii.py": b"# coding: us-ascii\n",
        "late.py": b"TEXT = 'x'\n# coding: cp1252\n",
        "third.py": b"#\n#\n# coding: cp1252\n",
        "main.py": "import importlib, sys\n"
                   "for name in sys.argv[1:]:\n"
                   "    importlib.import_module(name)\n"
                   "    print(name, [module for module in sys.modules if module.startswith('encodings.')][-1])\n",
    })
    archive = tmp_path / "app.csa"
    environment = {"PYTHONDONTWRITEBYTECODE": "1"}
    modules = ["plain", "ascii", "late", "third", "western", "greek"]
    dump(archive, ["main.py", *modules], cwd=app, env=environment)
    plain, archived, verbose = run_both(["main.py", *modules], archive, cwd=app, env=environment)
    assert plain.stdout.endswith("\nwestern encodings.cp1252\ngreek encodings.iso8859_7\n"), plain.stdout
    assert "encodings.cp1252" not in plain.stdout.split("\nwestern")[0], plain.stdout
    assert_same_run(plain, archived)
    assert set(modules) <= served(verbose.stderr)


def test_a_source_removed_while_the_dump_runs_is_archived_and_a_run_imports_as_plain(tmp_path):
    # The dump compiles each source again to see whether it warns: one it can
    # no longer read does not warn. It had been left out, the dump saying
    # that it compiles with a warning.
    app = make_app(tmp_path, {
        "gone.py": "VALUE = 'gone'\n",
        "main.py": "import os, json, gone\nprint(gone.VALUE)\nos.remove(gone.__file__)\n",
    })
    archive = tmp_path / "app.csa"
    dumped = dump(archive, ["main.py"], cwd=app, env={"CODESHARE_VERBOSE": "1"})
    assert "left gone to plain import" not in dumped.stderr
    assert "gone" in archived_names(archive)
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app)
    assert "No module named 'gone'" in plain.stderr
    assert_same_run(plain, archived)
    assert "json" in served(verbose.stderr)
