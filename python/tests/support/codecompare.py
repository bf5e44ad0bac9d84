"""Deep comparison of two code objects, as the exact-round-trip tests need:
`==`, every co_* attribute, the disassembly, positions and line tables, the
exact type of every constant (recursively) and interned names."""
import dis
import marshal
import math
import re
import sys
import types

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")
_SCALARS = ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
            "co_stacksize", "co_flags", "co_firstlineno", "co_code", "co_name",
            "co_qualname", "co_filename", "co_lnotab", "co_linetable",
            "co_exceptiontable", "co_names", "co_varnames", "co_cellvars", "co_freevars")


def _disassembly(code):
    return _ADDRESS.sub("", dis.Bytecode(code).dis())


def same_constant(a, b):
    """Equal value and exactly the same type, recursively; floats by bits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, types.CodeType):
        return not differences(a, b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (a != a and b != b)
    if isinstance(a, complex):
        return same_constant(a.real, b.real) and same_constant(a.imag, b.imag)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same_constant(x, y) for x, y in zip(a, b))
    if isinstance(a, frozenset):
        return len(a) == len(b) and all(
            any(same_constant(x, y) for y in b) for x in a)
    return a == b


def differences(got, want, where=""):
    """A list of human-readable differences between two code objects."""
    where = f"{where}/{want.co_qualname}"
    found = []
    # A NaN constant is equal only to itself: two independent loads of the
    # same marshal data are not == either, so == is expected only where it is.
    if got != want and want == marshal.loads(marshal.dumps(want)):
        found.append(f"{where}: code objects are not ==")
    for name in _SCALARS:
        if getattr(got, name) != getattr(want, name):
            found.append(f"{where}: {name} differs")
    if list(got.co_positions()) != list(want.co_positions()):
        found.append(f"{where}: co_positions differ")
    if list(got.co_lines()) != list(want.co_lines()):
        found.append(f"{where}: co_lines differ")
    if _disassembly(got) != _disassembly(want):
        found.append(f"{where}: disassembly differs")
    for group in ("co_names", "co_varnames", "co_cellvars", "co_freevars"):
        for name in getattr(got, group):
            if sys.intern(name) is not name:
                found.append(f"{where}: {group} name {name!r} is not interned")
    if len(got.co_consts) != len(want.co_consts):
        found.append(f"{where}: co_consts length differs")
    for index, (a, b) in enumerate(zip(got.co_consts, want.co_consts)):
        if isinstance(b, types.CodeType) and isinstance(a, types.CodeType):
            found.extend(differences(a, b, where))
        elif not same_constant(a, b):
            found.append(f"{where}: constant {index} differs: {a!r} ({type(a).__name__}) "
                         f"vs {b!r} ({type(b).__name__})")
    return found
