"""Recording what a program imports, for `python -m codeshare dump`.

While the program runs, PathFinder.find_spec, FileLoader.get_data and
SourceLoader.get_code are observed: once the first returns, the recorder
notes where each module was searched for and found; once the second has
read a source, just before importlib compiles it, which of the names it
quotes the process had interned (see constant_set_recipes); once the third
does, the code object the module executes. The observing methods are C
(`_core.observed`): no frame of the recorder stands between importlib's
while they run, so an exception raised in them (a syntax error in an
imported module) shows as under plain Python. When the program ends the
recording becomes an archive: the hook's own modules, one entry per module
loaded from source (but one whose source compiles with a warning), and a
manifest with the search paths, the state of every directory searched, and
where extension modules were found.
"""
import _imp
import _thread
import builtins
import marshal
import os
import sys
import time
from _frozen_importlib_external import (_RAW_MAGIC_NUMBER, MAGIC_NUMBER, ExtensionFileLoader, FileLoader, PathFinder,
                                        SourceFileLoader, SourceLoader, _get_cached)

from . import HOOK_MODULES, __path__ as package_path, _core, archive, hook_source
from .resolution import (MANIFEST_VERSION, RECENT_NS, RECENTLY_CHANGED, bytecode_conditions, directory_mtime, entry_key,
                         module_entry, module_names, path_join, working_directory)


# types.CodeType, without importing types, which the program may not.
CodeType = type((lambda: None).__code__)


class Recorder:
    def __init__(self, program):
        self.found = {}   # name -> (search list, origin, kind, is_package, located)
        self.codes = {}   # name -> (path, code, size, mtime_ns, hashed)
        # name -> the names among the strs of the constant sets of a module
        # compiled from its source that the process had interned before it
        # compiled; and (thread, source path) -> names_interned of a source
        # read to compile, until its code is got.
        self.interned_before = {}
        self._names_interned = {}
        # id of a str -> references to it that only the recorder keeps: from
        # the code of modules whose bodies have run, which plain Python frees
        # (see held_only); and the modules recorded but not yet counted (a
        # dict: a thread counts the one it pops).
        self._held_only = {}
        self._uncounted = {}
        # The module-like names of each directory an import looked at, as it
        # first saw them: what a run compares the directory with where the
        # program changed it before the archive was written.
        self.seen = {}
        self.program = program
        # How many modules had been recorded when the program started
        # (site.py's, imported as it ran the .pth files after codeshare's and
        # sitecustomize), or None before.
        self.started_after = None
        # When the recording began, less RECENT_NS, ample for the lag of the
        # clock files are stamped with: a .pyc written since, the run may
        # have written, compiling its source.
        self.began_ns = time.time_ns() - RECENT_NS
        # Modules loaded from source that the archive leaves to plain import
        # (their sources compile with a warning), set by entries_and_manifest.
        self.left_out = []
        self._originals = None

    @property
    def program_started(self):
        return self.started_after is not None

    def install(self):
        """Records from now on."""
        find_spec, get_data, get_code = PathFinder.__dict__["find_spec"], FileLoader.get_data, SourceLoader.get_code
        self._originals = (find_spec, get_data, get_code)
        PathFinder.find_spec = classmethod(_core.observed(find_spec.__func__, self._spec_found))
        FileLoader.get_data = _core.observed(get_data, self._data_read)
        SourceLoader.get_code = _core.observed(get_code, self._code_got)

    def program_starts(self):
        self.started_after = len(self.codes)

    def uninstall(self):
        if self._originals:
            PathFinder.find_spec, FileLoader.get_data, SourceLoader.get_code = self._originals
            self._originals = None

    def _spec_found(self, spec, cls, fullname, path=None, target=None):
        if spec is not None:
            self._found(fullname, path, spec)

    def _data_read(self, data, loader, path):
        # get_code reads a source only to compile it (or to check a hash-based
        # .pyc against it), and compiles it at once.
        if type(loader) is SourceFileLoader and path == loader.path and type(data) is bytes:
            self._count_finished_modules()
            self._names_interned[_thread.get_ident(), path] = names_interned(data, self._held_only)

    def _count_finished_modules(self):
        for name in list(self._uncounted):
            spec = getattr(sys.modules.get(name), "__spec__", None)
            if not getattr(spec, "_initializing", False) and self._uncounted.pop(name, None):
                held_only(self.codes[name][1], self._held_only)

    def _code_got(self, code, loader, fullname):
        if type(loader) is SourceFileLoader:
            names = self._names_interned.pop((_thread.get_ident(), loader.path), None)
            if code is not None:
                self._code(fullname, loader.path, code, names)

    def _found(self, name, path, spec):
        loader = type(spec.loader)
        if loader is SourceFileLoader:
            kind = "source"
        elif loader is ExtensionFileLoader:
            kind = "extension"
        else:
            return  # namespace packages and foreign loaders: plain import
        search = list(sys.path if path is None else path)
        is_package = spec.submodule_search_locations is not None
        self.found[name] = (search, spec.origin, kind, is_package, self._locate(name, search, spec.origin, is_package))

    def _locate(self, name, search, origin, is_package):
        """(entry, named, trail): the index of the entry of `search` whose
        FileFinder found `name` at `origin`, the directories named like it
        in those searched up to that one, whose __init__ files FileFinder
        looks for before any module of the name, and the directories
        searched; or None. Notes what each directory holds now."""
        cwd = working_directory()
        entry = module_entry(search, origin, is_package, cwd)
        if entry is None:
            return None
        tail, named, trail = name.rpartition(".")[2], [], []
        for directory in search[:entry + 1]:
            directory = entry_key(directory, cwd)
            trail.append(directory)
            inside = path_join(directory, tail)
            if os.path.isdir(inside):
                named.append(inside)
        for directory in trail + named:
            if directory not in self.seen:
                self.seen[directory] = module_names(directory)
        return entry, tuple(named), tuple(trail)

    def _code(self, name, path, code, names):
        # The first import's code: a reload may see an edited file that the
        # program restores later.
        if name in self.codes:
            return
        try:
            status = os.stat(path)
        except OSError:
            return
        self.codes[name] = (path, code, status.st_size, status.st_mtime_ns, hash_based(path))
        self._uncounted[name] = True
        if names is not None:
            quoted, interned = names
            elements = [element.encode() for constant in constant_sets(code) for element in constant if is_name(element)]
            # Copies kept, not the strs themselves: a reference the dump held
            # would count as one plain Python holds (see is_interned).
            if all(element in quoted for element in elements):   # else (`'ab' 'cd'`) unknown
                self.interned_before[name] = {element.decode() for element in elements if element in interned}

    def entries_and_manifest(self):
        """The archive's entries and manifest for what was loaded, the
        orders of the constant sets of the modules that plain import
        compiles at each start (see archive.write), and the constants to
        hold through the write for the program (see kept_counterparts)."""
        # Archive order is the order imports started in (get_code runs
        # before the body imports anything): the order a run asks for them,
        # which the read-ahead thread keeps a window ahead of. sys.modules
        # has them in the order they finished, a package after its
        # submodules: asked for first, it sent the window to the end of the
        # archive.
        order = {name: index for index, name in enumerate(self.codes)}
        started_after = len(self.codes) if self.started_after is None else self.started_after
        searches, search_index, directories, listings = [], {}, {}, {}
        entries, extensions, set_recipes, compiling, held = [], {}, {}, {}, []

        def note(directory):
            if directory not in directories:
                mtime, names = directory_record(directory)
                seen = self.seen.get(directory, names)
                if names != seen:
                    # The program changed it after an import looked at it:
                    # each run compares it with what that import saw.
                    mtime, names = RECENTLY_CHANGED, seen
                directories[directory], listings[directory] = mtime, names

        def resolution(search, located):
            """(search, entry, named) as the metadata records them."""
            if located is None:
                return None
            entry, named, trail = located
            key = tuple(search)
            if key not in search_index:
                search_index[key] = len(searches)
                searches.append(list(search))
            for directory in trail + named:
                note(directory)
            return search_index[key], entry, named

        # By spec name: a module run with -m is __main__ but was found as itself.
        loaded = {module.__spec__.name: module.__spec__ for module in list(sys.modules.values())
                  if getattr(module, "__spec__", None) is not None}
        # A source module's code was read from the file found: it was
        # imported (the module may have replaced itself in sys.modules since).
        imported = {name: self.codes[name] for name, (_, origin, kind, _, _) in self.found.items()
                    if kind == "source" and name.partition(".")[0] != "codeshare"
                    and self.codes.get(name, (None,))[0] == origin}
        effects = compile_effects_of({path: size for path, _, size, _, _ in imported.values()})
        for name, (search, origin, kind, is_package, located) in sorted(self.found.items()):
            if name.partition(".")[0] == "codeshare":
                continue
            if kind == "source":
                recorded = imported.get(name)
                if recorded is None:
                    continue
                warns, codec, imports = effects[origin]
                if warns:
                    self.left_out.append(name)
                    continue
                recorded_at = resolution(search, located)
                if recorded_at is None:
                    continue
                search_at, entry, named = recorded_at
                path, code, size, mtime_ns, hashed = recorded
                if reads_bytecode(origin, size, mtime_ns):
                    code, recipes, kept = bytecode_code(code, origin, self.began_ns)
                    held += kept
                    if recipes:   # else the writer's order, as marshal would store the sets now
                        set_recipes[name] = recipes
                else:
                    code, set_recipes[name] = constant_set_recipes(code, read_source(origin), origin,
                                                                   self.interned_before.get(name))
                    if codec is not None or imports:
                        compiling[name] = (codec, imports)
                entries.append((name, code, (origin, is_package, search_at, entry, size, mtime_ns, _get_cached(origin),
                                             hashed, named)))
            elif getattr(loaded.get(name), "origin", None) == origin:
                recorded_at = resolution(search, located)
                if recorded_at is not None:
                    extensions[name] = (origin, is_package, *recorded_at)
        entries.sort(key=lambda entry: order[entry[0]])
        startup = sum(order[name] < started_after for name, _, _ in entries)
        hook = self._hook_entries(resolution)
        # A listing is needed only when its directory's mtime moved: each is
        # kept as marshal bytes, so that opening the archive parses none and
        # a run parses only those it compares.
        manifest = {"version": MANIFEST_VERSION, "searches": searches, "directories": directories,
                    "listings": {directory: marshal.dumps(names) for directory, names in listings.items()},
                    "extensions": extensions, "compiling": compiling, "bytecode": bytecode_conditions(),
                    "program": self.program,
                    "startup": len(hook) + startup}
        return hook + entries, manifest, set_recipes, held

    def _hook_entries(self, resolution):
        """The hook's own modules, as the package would import them: a
        start that finds them unchanged runs them from the archive."""
        entries = []
        for name in HOOK_MODULES:
            origin = hook_source(name)
            try:
                status = os.stat(origin)
            except OSError:
                continue
            code = compiled(origin)
            if code is None:
                continue
            search = list(package_path)
            recorded_at = resolution(search, self._locate(name, search, origin, False))
            if recorded_at is not None:
                search_at, entry, named = recorded_at
                entries.append((name, code, (origin, False, search_at, entry, status.st_size, status.st_mtime_ns,
                                             _get_cached(origin), hash_based(origin), named)))
        return entries

    def write(self, path):
        entries, manifest, set_recipes, held = self.entries_and_manifest()
        archive.write(path, entries, manifest, together=True, set_recipes=set_recipes)
        del held   # the writer has seen them held
        recent = sum(mtime == RECENTLY_CHANGED for mtime in manifest["directories"].values())
        return len(entries), len(manifest["extensions"]), recent


def bytecode_header(path):
    """The first 16 bytes of the .pyc import looks for beside the source at
    `path` (magic number, flags, and the source's mtime and size or its
    hash), or None if there is none to read."""
    try:
        with open(_get_cached(path), "rb") as file:
            header = file.read(16)
    except (OSError, TypeError):
        return None
    return header if len(header) == 16 and header[:4] == MAGIC_NUMBER else None


def hash_based(path):
    """What a hash-based .pyc of the source at `path` says, as the metadata
    records it: (whether import is to check the source, the hash of the
    source now), or None for a .pyc of timestamps, or none. The hash is the
    source's, not the .pyc's: the code recorded is the source's, compiled
    afresh if the .pyc no longer matched it."""
    header = bytecode_header(path)
    flags = 0 if header is None else int.from_bytes(header[4:8], "little")
    if not flags & 0b1:
        return None
    try:
        with open(path, "rb") as file:
            source = file.read()
    except OSError:
        return None
    return bool(flags & 0b10), _imp.source_hash(_RAW_MAGIC_NUMBER, source)


def reads_bytecode(path, size, mtime_ns):
    """Whether plain import of the source at `path`, of this st_size and
    st_mtime_ns, would read its .pyc rather than compile the source: one
    of this interpreter stands where import looks, hash-based (the
    metadata's `hashed` decides) or of the source's mtime and size."""
    header = bytecode_header(path)
    if header is None:
        return False
    flags = int.from_bytes(header[4:8], "little")
    if flags & 0b1:
        return not flags & ~0b11
    return (flags == 0 and int.from_bytes(header[8:12], "little") == (mtime_ns // 1_000_000_000) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == size & 0xFFFFFFFF)


def bytecode_code(code, path, began_ns):
    """(code, recipes, kept): the code plain import loads from the .pyc of
    the source at `path`, where it may differ from `code`, the code the
    module ran, in what code equality does not compare; else `code`. It may
    where the run wrote the .pyc (since `began_ns`): compiling makes some
    constants otherwise than a load does (a set's order, a one-character
    str of its own). Where the .pyc is older, `code` is its load, and the
    code archived: the writer sees which of its constants the program kept
    (a class's docstring). A second load's would not show it: `kept` is
    then the constants of the load whose counterparts the program kept
    (see kept_counterparts). The recipes (see archive.write) of its
    constant sets: their elements in the order the .pyc holds them, in
    which its load inserts them (where elements collide in the table,
    another order gives them other slots). Marshal sorted them by their own
    marshal bytes, which flag each str interned and each object referenced
    more than once in the process that wrote the .pyc: sorted again at the
    dump's end, after the program interned a one-character str or an
    attribute's name, they would go in in another order."""
    cached = _get_cached(path)
    try:
        written_before = os.stat(cached).st_mtime_ns < began_ns
        if written_before and not constant_sets(code):
            return code, [], []
        with open(cached, "rb") as file:
            data = file.read()[16:]
        loaded = marshal.loads(data)
    except (OSError, ValueError, EOFError, TypeError, MemoryError):
        return code, [], []
    if type(loaded) is not type(code) or loaded != code:
        return code, [], []   # the .pyc was rewritten since the module ran
    kept = []
    if not written_before:
        _imp._fix_co_filename(loaded, path)
        kept = kept_counterparts(code, loaded)
        code = loaded
        if not constant_sets(code):
            return code, [], kept
    try:
        return code, stored_set_orders(data, code), kept
    except (ValueError, IndexError, EOFError, TypeError, MemoryError, RecursionError):
        return code, [], kept


def kept_counterparts(ran, loaded):
    """The constants of `loaded`, a load of the .pyc the run wrote, equal to
    `ran`, the code the module ran, whose counterparts in `ran` the program
    kept: those with more references than the constants of `ran` hold, as
    the writer tells what a program kept. Held through the write, each has
    one reference more than the archived objects hold, and is laid out as
    kept (a class's docstring apart from the run-once part)."""
    # id of a constant of `ran`: [it, the references ran's constants hold, its counterpart]
    counted = {}
    pairs = [(ran, loaded)]
    while pairs:
        constant, counterpart = pairs.pop()
        if type(constant) is CodeType:
            pairs += zip(constant.co_consts, counterpart.co_consts)
            continue
        entry = counted.get(id(constant))
        if entry is not None:
            entry[1] += 1   # reached again: what it holds was counted
            continue
        counted[id(constant)] = [constant, 1, counterpart]
        if type(constant) is tuple:
            pairs += zip(constant, counterpart)
        elif type(constant) is frozenset:
            own = {element: element for element in counterpart}
            pairs += [(element, own[element]) for element in constant if element in own]
    # Beyond the references counted: the entry's, the loop's and the call's.
    # A constant both codes share (None, an interned str) needs no holding.
    return [counterpart for constant, references, counterpart in counted.values()
            if counterpart is not constant and sys.getrefcount(constant) - 3 > references]


def stored_set_orders(data, code):
    """The recipes of the frozensets `code` holds (reachable through
    constants), loaded from the marshal bytes `data`: each set's own
    elements in the order `data` holds them, not made again (0 rebuilds).
    `data` is loaded again with each frozenset's type turned into a
    tuple's, which keeps the order."""
    as_tuples = bytearray(data)
    for offset in marshal_frozensets(data):
        as_tuples[offset] = as_tuples[offset] & FLAG_REF | ord("(")
    ordered = marshal.loads(bytes(as_tuples))
    recipes, pairs = [], [(code, ordered)]
    while pairs:
        loaded, in_order = pairs.pop()
        if type(loaded) is CodeType:
            pairs += zip(loaded.co_consts, in_order.co_consts)
        elif type(loaded) is tuple:
            pairs += zip(loaded, in_order)
        elif type(loaded) is frozenset:
            own = {element: element for element in loaded}
            recipes.append((tuple(own[element] for element in in_order), 0))
    return recipes


# marshal.c's FLAG_REF: the object is also stored in the load's table of
# references, which a later TYPE_REF ('r') names by its index.
FLAG_REF = 0x80


def marshal_frozensets(data):
    """The offsets of the frozensets' type codes in `data`, the marshal
    bytes of a code object (marshal version 4, CPython 3.11)."""
    offsets, position = [], 0

    def count(size):
        nonlocal position
        value = int.from_bytes(data[position:position + size], "little", signed=True)
        position += size
        return value

    def skip():
        nonlocal position
        kind = chr(data[position] & ~FLAG_REF)
        position += 1
        if kind in "0NFTS.":        # NULL, None, False, True, StopIteration, Ellipsis
            return
        if kind in "ir":            # int32, reference
            position += 4
        elif kind == "g":           # binary float
            position += 8
        elif kind == "y":           # binary complex
            position += 16
        elif kind == "l":           # long: a digit count, 15-bit digits
            digits = abs(count(4))
            position += 2 * digits
        elif kind in "stuaA":       # bytes, interned, unicode, ASCII (interned)
            size = count(4)
            position += size
        elif kind in "zZ":          # short ASCII (interned)
            size = count(1) & 0xFF
            position += size
        elif kind in "([<>":        # tuple, list, set, frozenset
            if kind == ">":
                offsets.append(position - 1)
            for _ in range(count(4)):
                skip()
        elif kind == ")":           # small tuple
            for _ in range(count(1) & 0xFF):
                skip()
        elif kind == "{":           # dict: key, value pairs up to a NULL
            while data[position] != ord("0"):
                skip()
                skip()
            position += 1
        elif kind == "c":           # code: 5 int32s, 8 objects, an int32, 2 objects
            position += 20
            for _ in range(8):
                skip()
            position += 4
            for _ in range(2):
                skip()
        else:
            raise ValueError(f"marshal type {kind!r}")

    skip()
    if position != len(data):
        raise ValueError("marshal data longer than its object")
    return offsets


def constant_sets(code):
    """The frozensets among the constants of `code` and of the code objects
    it holds."""
    constants, codes = [], [code]
    while codes:
        for constant in codes.pop().co_consts:
            if type(constant) is frozenset:
                constants.append(constant)
            elif type(constant) is type(code):
                codes.append(constant)
    return constants


def names_interned(source, held_only):
    """The names a quote begins and ends in `source` (bytes), which could be
    strs of its constant sets, and those of them the process has interned,
    which the compiler's interning will find, but for those only the
    recorder keeps (`held_only`, see is_interned): (quoted, interned), sets
    of bytes."""
    quoted = {piece for piece in source.replace(b'"', b"'").split(b"'")
              if len(piece) > 1 and piece.isascii() and piece.replace(b"_", b"a").isalnum()}
    return quoted, {name for name in quoted if is_interned(name, held_only)}


def is_interned(name, held_only):
    """Whether the process has interned the str of `name` (ASCII bytes of
    more than one character), asked without interning it: a str interned
    only as it is asked is freed at once, and leaves the interned ones.
    One interned that only references the recorder keeps hold (`held_only`:
    id -> how many) plain Python would have freed: it is not."""
    text = name.decode()
    interned = sys.intern(text)
    # Not counted: `interned`, and getrefcount's own.
    return interned is not text and sys.getrefcount(interned) - 2 > held_only.get(id(interned), 0)


def held_only(code, counts):
    """Adds to `counts` (id of a str -> references) the references to strs
    from `code`, the code of a module whose body has run, and from the code
    objects, tuples and frozensets of its constants that nothing else holds:
    plain Python frees them once the body has run (a class body's code, a
    comprehension's, an import's names), and with them the strs only they
    held, interned or not; the recorder keeps them to write the archive."""
    found, inner = reachable_constants(code)
    # Held from elsewhere too (by a function, by what the program kept):
    # alive under plain Python, and what it holds with it. Not counted:
    # `found`'s, `container`'s and getrefcount's own references.
    alive = []
    for container in found.values():
        if container is not code and sys.getrefcount(container) - 3 > inner[id(container)]:
            alive.append(container)
    alive_ids = set()
    while alive:
        container = alive.pop()
        if id(container) not in alive_ids:
            alive_ids.add(id(container))
            alive.extend(constant_containers(container))
    for key, container in found.items():
        if key not in alive_ids:
            for text in held_strs(container):
                counts[id(text)] = counts.get(id(text), 0) + 1


def reachable_constants(code):
    """The code objects, tuples and frozensets reachable from `code` through
    constants, by id, and how many references each has from among them."""
    found, inner, stack = {id(code): code}, {}, [code]
    while stack:
        for child in constant_containers(stack.pop()):
            inner[id(child)] = inner.get(id(child), 0) + 1
            if id(child) not in found:
                found[id(child)] = child
                stack.append(child)
    return found, inner


def constant_containers(container):
    """The code objects, tuples and frozensets a code object's constants, a
    tuple or a frozenset holds, once for each reference."""
    items = container.co_consts if type(container) is CodeType else container
    return [item for item in items if type(item) in (CodeType, tuple, frozenset)]


def held_strs(container):
    """The strs a code object, a tuple or a frozenset holds, once for each
    reference: a code object's names, those of its locals, cells and free
    variables (one tuple holds each once), and its constants."""
    if type(container) is not CodeType:
        return [item for item in container if type(item) is str]
    local_names = {id(name): name for name in container.co_varnames + container.co_cellvars + container.co_freevars}
    return ([container.co_name, container.co_qualname, container.co_filename, *container.co_names,
             *local_names.values()] + [item for item in container.co_consts if type(item) is str])


def is_name(element):
    """Whether the code object interns `element` where it is a constant: a
    str of more than one of [A-Za-z0-9_] (one character is the interpreter's
    own)."""
    return type(element) is str and len(element) > 1 and element.isascii() and element.replace("_", "a").isalnum()


def made(inserted, rebuilds):
    """The set the compiler makes of `inserted`, in that order, made again
    `rebuilds` times of its own order, with this process's hashes."""
    built = frozenset(inserted)
    for _ in range(rebuilds):
        built = frozenset(tuple(built))
    return built


def constant_set_recipes(code, source, path, interned_before):
    """How the compiler made the constant sets of `code`, compiling its
    `source` (bytes, or None if unread) at `path`, as plain Python compiles
    it: (code, recipes). A recipe is (elements, rebuilds), a set's own
    elements in the order it inserted them, and how many times it then made
    the set again of its elements in the set's own order; the recipe comes
    first, then another where it cannot tell. It makes a set of each
    display whose elements are all literals, in the order of the source,
    then makes the constant again (as it makes every constant, to merge
    those equal), and once more where the code object interns a str in it
    and finds another: one the process had interned before the module
    compiled (`interned_before`: those of the sets', or None if unknown),
    or the parser's of the module's own identifier of the name, unless the
    compiler had merged the set's str with that identifier before (a
    keyword argument's name, an imported one). Compiling the source again
    tells (see last_step_ran); where that cannot, a set holding a name is
    taken to have been made the last time. The code is `code`, but where
    the dump's own compiling made a set a last time on a str only the
    recorder kept (see held_only), which plain Python would not have: then
    its code objects are made again with the set plain Python makes."""
    constants = constant_sets(code)
    if not constants:
        return code, []   # most modules: their source is not parsed
    # Imported here, once the recording is over (see compile_effects).
    import ast
    if source is None:
        return code, []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return code, []
    displays = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Set):
            try:
                elements = tuple(ast.literal_eval(element) for element in node.elts)
                displays.append((frozenset(elements), elements))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
    recipes, plain_sets = [], {}
    for constant in constants:
        own = {element: element for element in constant}
        for value, elements in displays:
            if value == constant:
                inserted = tuple(dict.fromkeys(own[element] for element in elements))
                if not any(map(is_name, inserted)):
                    recipes.append((inserted, 1))   # the code object interns only names
                    continue
                ran = None if interned_before is None else last_step_ran(source, path, inserted, interned_before)
                rebuilds = 1 if ran is False else 2
                recipes += [(inserted, rebuilds), (inserted, 3 - rebuilds)]
                if (ran is not None and id(constant) not in plain_sets
                        and list(made(inserted, rebuilds)) != list(constant) == list(made(inserted, 3 - rebuilds))):
                    plain_sets[id(constant)] = made(inserted, rebuilds)
    return with_constants(code, plain_sets), recipes


def with_constants(code, replaced):
    """`code`, or where it holds constants of `replaced` (id -> object), its
    code objects made again with them."""
    constants = tuple(replaced.get(id(constant), constant) if type(constant) is frozenset
                      else with_constants(constant, replaced) if type(constant) is CodeType else constant
                      for constant in code.co_consts)
    if all(new is old for new, old in zip(constants, code.co_consts)):
        return code
    return code.replace(co_consts=constants)


def last_step_ran(source, path, inserted, interned_before):
    """Whether compiling `source` made the constant set of `inserted` a
    last time, as its code object interned the set's names, or None where
    compiling it again cannot tell. The source is compiled again with each
    name renamed, everywhere, to one this process has not interned, those
    of `interned_before` interned first: the same identifiers, constants
    and merges, and names whose last step gives another order under this
    process's hashes, which the set compiled shows."""
    import keyword
    import re
    import warnings
    names = [element for element in inserted if is_name(element)]
    for attempt in range(64):
        renamed = {name: f"{name}_{attempt}_codeshare" for name in names}
        if any(is_interned(new.encode(), {}) for new in renamed.values()):
            continue
        order = tuple(renamed.get(element, element) if type(element) is str else element for element in inserted)
        without, with_last = list(made(order, 1)), list(made(order, 2))
        if without != with_last:
            break
    else:
        return None
    # A keyword is no identifier: its strs are the literals of it, quoted
    # (renamed where it is a keyword, no statement would be left).
    keywords = [re.escape(name.encode()) for name in names if keyword.iskeyword(name)]
    identifiers = [re.escape(name.encode()) for name in names if not keyword.iskeyword(name)]
    pattern = re.compile(rb"\b(?:%s)\b|(?<=['\"])(?:%s)(?=['\"])"
                         % (b"|".join(identifiers) or b"(?!)", b"|".join(keywords) or b"(?!)"))
    again = pattern.sub(lambda match: renamed[match.group().decode()].encode(), source)
    for name in names:
        if name in interned_before:
            sys.intern(renamed[name])   # that str itself, which `renamed` holds while compiling
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # a source that warns is left out before (compile_effects)
            compiled_again = compile(again, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None   # a soft keyword renamed where it is one, or the coding line
    target = frozenset(order)
    for constant in constant_sets(compiled_again):
        if constant == target:
            return list(constant) == with_last if list(constant) in (without, with_last) else None
    return None


def read_source(path):
    """The bytes of the source file at `path`, or None if it cannot be read
    (edited away or removed since it was imported)."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return None


def compiled(path):
    """The code of the source file at `path`, compiled as import compiles
    it, or None if it cannot be read or compiled."""
    source = read_source(path)
    try:
        return None if source is None else compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None


def share_bytes():
    """The source bytes worth a child of their own: compiling them (~10 MB
    a second) must take several times what forking a child of this process
    and ending it takes, ~40 us per MB it holds (its page tables; ~10 ms
    with pandas imported, 80 ms for a program of 2 GB). At least 384 KiB."""
    # Imported once the recording is over, as compile_effects imports warnings.
    import resource
    return max(384 * 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 // 600)


def compile_effects_of(sources):
    """compile_effects of each source file of `sources` ({path: size}), by
    path. Compiling them is most of a dump's own work (django's: 0.9 s of
    1.6 s), so they are shared among this process and a child forked for
    each other CPU it may run on, at most one per share_bytes(); a share
    whose child did not report is compiled here (_core.in_forked_children
    starts none where the program handles SIGCHLD or another thread runs
    Python)."""
    # What compile_effects imports, imported once here rather than in each
    # child (where -v would show each import again).
    import re, warnings  # noqa: E401, F401
    count = max(1, min(len(os.sched_getaffinity(0)), sum(sources.values()) // share_bytes()))
    # The largest first, each to the share with the fewest bytes so far.
    shares, loads = [[] for _ in range(count)], [0] * count
    for path in sorted(sources, key=sources.get, reverse=True):
        least = loads.index(min(loads))
        shares[least].append(path)
        loads[least] += sources[path]

    def effects(share):
        return marshal.dumps([compile_effects(read_source(path), path) for path in shares[share]])

    found = {}
    for share, report in enumerate(_core.in_forked_children(effects, count - 1)):
        found.update(zip(shares[share], marshal.loads(effects(share) if report is None else report)))
    return found


def compile_effects(source, path):
    """What compiling `source`, the bytes of the file at `path`, as import
    compiles it does but make code: (whether it issues a warning, the codec
    it decodes the source through or None, the modules it imports), or
    (False, None, ()) if it could not be read (None) or cannot be compiled.

    Plain import shows the compiler's warnings (a SyntaxWarning, a
    DeprecationWarning for an invalid escape; errors under -W error) each
    time it compiles the source: at every start where no valid .pyc stands
    beside it (PYTHONDONTWRITEBYTECODE, a read-only directory, a
    __pycache__ removed), which only a search tells. A module whose source
    warns is left to plain import; one the dump can no longer read or
    compile (edited or removed since it was imported) is archived, and a run
    checks its size and mtime as any module's.

    The compiler also imports unicodedata: to normalize each name that is
    not ASCII, through builtins.__import__, watched here (on this thread:
    a daemon thread of the program's may still import), and to look up the
    character of a \\N{...} escape in a str literal, only the first time
    in a process, which the source tells. The codec, whose module it imports
    the first time in a process too, the source's coding line tells."""
    # Imported here, once the recording is over: imported with this module,
    # before the program runs, it would already be in sys.modules when the
    # program imports it, and the archive would not hold it.
    import warnings
    if source is None:
        return False, None, ()
    imports, original, thread = set(), builtins.__import__, _thread.get_ident()

    def watched(name, *args, **kwargs):
        if _thread.get_ident() == thread:
            imports.add(name)
        return original(name, *args, **kwargs)

    with warnings.catch_warnings(record=True) as issued:
        warnings.simplefilter("always")
        builtins.__import__ = watched
        try:
            compile(source, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return False, None, ()
        finally:
            builtins.__import__ = original
    if b"\\N" in source and has_name_escape(source, path):
        imports.add("unicodedata")
    return bool(issued), source_codec(source), tuple(sorted(imports))


# The encodings that PyUnicode_Decode decodes by itself, by the name
# _Py_normalize_encoding makes of the one it is given (lowercase, each run of
# characters other than letters, digits and '.' one '_', none at the ends).
DECODED_WITHOUT_CODEC = {"utf8", "utf_8", "utf16", "utf_16", "utf32", "utf_32", "ascii", "us_ascii", "latin1", "latin_1",
                         "iso_8859_1", "iso8859_1"}


def source_codec(source):
    """The encoding name the compiler looks the codec up by to decode
    `source`, or None where it looks none up: PEP 263's coding line (a
    comment on line 1, or on line 2 below a blank or comment line 1), but
    UTF-8 and Latin-1 under the names the tokenizer gives them, and what
    PyUnicode_Decode decodes by itself. tokenize.detect_encoding reads the
    line too, but importing tokenize runs exec on a string (has_name_escape)."""
    import re
    if source.startswith(b"\xef\xbb\xbf"):
        return None   # UTF-8's mark: a coding line may only say so
    for line in re.split(rb"\r\n|\r|\n", source, maxsplit=2)[:2]:
        coding = re.match(rb"[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", line, re.ASCII)
        if coding is not None:
            break
        if re.match(rb"[ \t\f]*(?:#|$)", line) is None:
            return None
    else:
        return None
    name = coding[1].decode("ascii")
    # The tokenizer's get_normal_name reads the first 12 characters.
    normal = name[:12].lower().replace("_", "-")
    if normal in ("utf-8", "latin-1", "iso-8859-1", "iso-latin-1") or normal.startswith(
            ("utf-8-", "latin-1-", "iso-8859-1-", "iso-latin-1-")):
        return None
    if "_".join(re.findall(r"[a-z0-9.]+", name.lower())) in DECODED_WITHOUT_CODEC:
        return None
    return name


def has_name_escape(source, path):
    """Whether a str literal of `source` holds a \\N{...} escape: each made an
    invalid escape, \\q(...) (parentheses, which an f-string takes as text),
    warns as the source compiles, where one in a raw literal, a comment or
    after an escaped backslash does not (in a bytes literal, \\N is invalid
    already: such a source is left out). tokenize would tell too, but
    importing it runs exec on a string, after which a program that a
    KeyboardInterrupt ended exits with status 1 instead of by SIGINT."""
    import re
    import warnings
    with warnings.catch_warnings(record=True) as issued:
        warnings.simplefilter("always")
        try:
            compile(re.sub(rb"\\N\{([^}'\"\n\\]*)\}", rb"\\q(\1)", source), path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return False
    return any("'\\q'" in str(warning.message) for warning in issued)


def directory_record(directory):
    """What the manifest records of a directory: its mtime (MISSING,
    NOT_A_DIRECTORY, or RECENTLY_CHANGED when it cannot vouch for the
    listing) and its module-like names, listed after the mtime was read."""
    mtime = directory_mtime(directory)
    if mtime < 0:
        return mtime, ()
    names = module_names(directory)
    if time.time_ns() - mtime < RECENT_NS:
        return RECENTLY_CHANGED, names
    return mtime, names
