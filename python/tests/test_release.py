"""Acceptance: once a served module's body has run, the pages of what only
its module and class bodies used go back to the system, and everything the
program kept from them stays intact: docstrings, constants, class
attributes, default values, strings interned at run time, frames and the
module's own code object; reload and get_code still work afterwards."""
import pytest

from conftest import preload_library
from importing import assert_same_run, backdate_bytecode, dump, make_app, run_both, served

# Enough module-body code to fill whole pages once it has run.
BIG_BODY = "".join(f"value_{index} = len('constant string number {index}') + {index}\n" for index in range(1500))
# A module of constants nothing keeps, around what must survive the release.
# AFTER_DUMP is set in the compared runs, not in the dump's: what it guards
# is laid out as run-once. Strings interned while the body runs: the
# interned-string table refers to them without counting a reference (a string
# interned at dump time is archived as interned and never run-once), so the
# one interned only after the dump is left with exactly its archived count.
INTERNER = ("import os, sys\n"
            + "".join(f"_ = len('a constant nothing keeps, number {index}, long enough to fill pages')\n"
                      for index in range(150))
            + "if os.environ.get('AFTER_DUMP'):\n"
            + "    sys.intern('interned at run time only, its reference dropped')\n"
            + "sys.intern('interned while the body ran, its reference dropped')\n"
            # Kept only after the dump, so laid out as run-once: the long string
            # fills pages of its own, and only the kept tuple reaches it.
            + f"NESTED = (('{'z ' * 5000}', 'short'), b'bytes inside it') if os.environ.get('AFTER_DUMP') else None\n"
            + "kept = sys.intern('interned while the body ran, kept')\n"
            + "".join(f"_ = len('another constant nothing keeps, number {index}, as long')\n" for index in range(150)))
# A class body big enough to fill pages of its own, weakly referenced: in
# plain CPython the weak reference dies with the code object, from the
# archive it may stay alive, but never with its pages released.
WEAK_BODY = ("import sys, weakref\nclass Big:\n"
             + "".join(f"    attribute_{index} = {index} * 2\n" for index in range(1500))
             + "    body = weakref.ref(sys._getframe().f_code)\n")

FILES = {
    "main.py": """
import gc, importlib, sys
import kept, dropped, interner, weakbody
gc.collect()
print(weakbody.Big.body() is None or weakbody.Big.body().co_name == "Big")
print(sys.intern("".join(["interned while the body ran, ", "its reference dropped"])))
print(sys.intern("".join(["interned at run time only, ", "its reference dropped"])))
print(interner.kept, sys.intern("".join(["interned while the body ran, ", "kept"])) is interner.kept)
print(kept.__doc__, kept.__all__, kept.TABLE, kept.LINES)
if interner.NESTED:  # not in the dump's run
    print(interner.NESTED[0][0].count("z"), interner.NESTED[0][0][-5:], interner.NESTED[0][1], interner.NESTED[1])
print(kept.Thing.__doc__, kept.Thing.label, kept.Thing.sizes, kept.Thing().method())
print(kept.body_code.co_name, kept.body_code.co_filename == kept.__file__)
print(kept.class_body() is None or kept.class_body().co_name)
print(sys.intern("".join(["another ", "non-identifier!"])), kept.interned_late)
print(kept.error_frame_line, dropped.value_1499, dropped.Table.total)
code = dropped.__loader__.get_code("dropped")
namespace = {"__name__": "dropped_again"}
exec(code, namespace)
print(namespace["value_1499"], namespace["Table"].total)
importlib.reload(dropped)
print("reloaded", dropped.value_1499, dropped.Table.total)
""",
    "kept.py": '''"""The module docstring, kept as __doc__."""
import sys, weakref
__all__ = ("Thing", "TABLE")
TABLE = {"alpha key": ("one", "two"), "beta key": 2.5, "gamma": b"bytes constant"}
LINES = ["line %d of the body" % index for index in range(3)]

class Thing:
    """A class docstring."""
    label = "a class attribute, kept"
    sizes = (1, 2, 3)
    _body = weakref.ref(sys._getframe().f_code)
    def method(self, x=("default", "tuple")):
        return x

class_body = Thing._body
sys.intern("another non-identifier!")
interned_late = sys.intern("not an identifier, interned at run time")
body_code = sys._getframe().f_code
try:
    {}["missing key"]
except KeyError as error:
    error_frame_line = error.__traceback__.tb_frame.f_lineno
''',
    "interner.py": INTERNER,
    "weakbody.py": WEAK_BODY,
    "dropped.py": BIG_BODY + '''
class Table:
    rows = [("row", index) for index in range(50)]
    total = sum(index for _, index in rows)
''',
}

RELEASED = ("import sys, kept, dropped, interner; "
            "print(next(f for f in sys.meta_path if type(f).__name__ == 'ArchiveFinder').archive.stats['bytes_released'])")


# What an older kernel answers process_madvise(MADV_DONTNEED) on the
# calling process (EINVAL before Linux 6.13).
REFUSED = """#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
long syscall(long number, ...) {
    va_list arguments;
    va_start(arguments, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(arguments, long);
    va_end(arguments);
    if (number == SYS_process_madvise) { errno = EINVAL; return -1; }
    long (*real)(long, ...) = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
"""


def release_environment(tmp_path, mode):
    """CODESHARE_RELEASE for `mode`: "protect" (each release at once, its
    pages made to fault), "on" (in batches), or "refused" (in batches, the
    kernel refusing the batched call: range by range)."""
    if mode != "refused":
        return {"CODESHARE_RELEASE": mode}
    return {"CODESHARE_RELEASE": "on", "LD_PRELOAD": preload_library(tmp_path, "refused", REFUSED)}


@pytest.mark.parametrize("mode", ["protect", "on", "refused"])
def test_what_the_program_keeps_survives_the_release(tmp_path, mode):
    app = make_app(tmp_path, FILES)
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    environment = {"AFTER_DUMP": "1", **release_environment(tmp_path, mode)}
    plain, archived, verbose = run_both(["main.py"], archive, cwd=app, env=environment)
    assert plain.returncode == 0, plain.stderr
    for expected in ("while the body ran, its reference dropped", "at run time only, its reference dropped",
                     "body ran, kept True", "The module docstring", "('Thing', 'TABLE')",
                     "b'bytes constant'", "line 2 of the body", "5000  z z  short b'bytes inside it'",
                     "a class attribute, kept (1, 2, 3) ('default', 'tuple')", "<module> True",
                     "another non-identifier! not an identifier", "22 1526 1225", "1526 1225",
                     "reloaded 1526 1225"):
        assert expected in plain.stdout, expected
    assert_same_run(plain, archived)
    assert {"kept", "dropped", "interner", "weakbody"} <= served(verbose.stderr)


@pytest.mark.parametrize("mode", ["protect", "on", "refused"])
def test_the_run_once_pages_go_back(tmp_path, mode):
    app = make_app(tmp_path, FILES)
    archive = tmp_path / "app.csa"
    dump(archive, ["main.py"], cwd=app)
    _, archived, _ = run_both(["-c", RELEASED], archive, cwd=app, env=release_environment(tmp_path, mode))
    assert archived.returncode == 0, archived.stderr
    # Batches go back at 16 pages: the big module body's fill one.
    assert int(archived.stdout) >= 16 * 4096, "the big module body's pages were given back"


def scattered_keeps(variant):
    """A module of sixty classes, each keeping its docstring and the keys of
    a dict built from a constant tuple, each with 3,000 bytes of a constant
    nothing keeps between them: laid out among the run-once objects, what
    the program keeps would hold every page of them. With a constant set,
    the dump also reads the module's .pyc for the set's order (and once
    archived a second load of it, whose objects the program did not keep).
    With a dropped dict: the module body builds one more dict of the same
    keys, of the same constant tuple (the compiler shares it), and drops
    it: the tuple is reached twice, but holds its keys once. With sets in
    the classes: each class body tests a name against a constant set,
    whose elements the set the reader makes keeps. With its .pyc written
    by the dump's run: the dump archives a load of it, whose constants the
    program did not keep, but their counterparts in the code it ran."""
    return ("".join(f'class Kept{index}:\n'
                    f'    """Docstring {index}, kept by its class."""\n'
                    f'    table = {{"first key {index}, kept by the dict": 1, "second key {index}, kept too": 2}}\n'
                    f'    _ = len("dead {index} " + "x" * 3000)\n'
                    + (f'    found = __name__ in {{"first element {index}", "second element {index}"}}\n'
                       if variant == "with sets in the classes" else "")
                    + (f'_ = {{"first key {index}, kept by the dict": 0, "second key {index}, kept too": 0}}\n'
                       if variant == "with a dropped dict" else "") for index in range(60))
            + ('if __name__ in {"scattered", "unused", "names"}:\n    pass\n' if variant == "with a constant set" else ""))


@pytest.mark.parametrize("variant", ["with a constant set", "with a dropped dict", "with sets in the classes",
                                     "with its .pyc written by the dump's run", "without"])
def test_what_the_program_kept_of_the_bodies_lies_apart_from_what_goes_back(tmp_path, variant):
    app = make_app(tmp_path, {"scattered.py": scattered_keeps(variant)})
    archive = tmp_path / "app.csa"
    if variant == "with its .pyc written by the dump's run":
        dump(archive, ["-c", "import scattered"], cwd=app, env={"PYTHONDONTWRITEBYTECODE": ""})
    else:
        backdate_bytecode(app, "scattered")   # plain import's .pyc, and the dump's
        dump(archive, ["-c", "import scattered"], cwd=app)
    program = ("import sys, scattered; "
               "print(scattered.Kept59.__doc__, *scattered.Kept0.table, scattered.Kept30._); "
               "finder = next((f for f in sys.meta_path if type(f).__name__ == 'ArchiveFinder'), None); "
               "print(finder and finder.archive.stats['bytes_released'])")
    plain, archived, verbose = run_both(["-c", program], archive, cwd=app, env={"CODESHARE_RELEASE": "on"})
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0] == ("Docstring 59, kept by its class. first key 0, kept by the dict "
                                            "second key 0, kept too 3008")
    assert archived.stdout.splitlines()[0] == plain.stdout.splitlines()[0]
    assert "scattered" in served(verbose.stderr)
    # The 180 KB of dead constants, whole pages once the kept objects are laid
    # out before the run-once part (less a batch of 64 KiB not yet given back).
    assert int(archived.stdout.splitlines()[1]) >= 110_000
