"""The meta-path finder and loader that serve imports from an archive.

`ArchiveFinder` sits on `sys.meta_path` just before `PathFinder`. For a
module the archive holds it checks, without searching, that plain import
would find the same file (see resolution.py); if not, it asks PathFinder and
serves the archived code only if PathFinder picks the recorded file.
`ArchiveLoader` is a SourceFileLoader whose get_code returns the archived
code object when the source is unchanged (size and mtime), and otherwise
does exactly what SourceFileLoader does. As it gives the code, it becomes
the loader plain import gives the module, before the body runs; once the
body has run, the finder gives back what only the body used.
"""
import _codecs
import _frozen_importlib_external
import _imp
import os
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import ExtensionFileLoader, FileFinder, PathFinder, SourceFileLoader

from ._core import ArchiveError, file_unchanged, loader_methods, replacement, same_items, version_sum
from .resolution import Resolver, bytecode_conditions, extension_record, module_record

# What plain import runs to search the path and load a source, which a
# program may replace: the methods of importlib's classes, on them or on a
# base, the functions of their module (_path_stat), those of the built-in
# modules it holds under these names (_os.stat and _os.listdir,
# _io.open_code, marshal.loads, _imp._fix_co_filename), and the two of
# importlib._bootstrap that the search and a .pyc load call and a served
# import does not: the function of the -v lines (a program that logs which
# caches are read) and the class of the spec FileFinder makes. The rest of
# _bootstrap a served import runs as plain import does, replaced or not (an
# import-time profiler wraps _find_and_load).
IMPORTLIB_CLASSES = (PathFinder, FileFinder, SourceFileLoader)
IMPORTLIB_HELD = {"_os": _frozen_importlib_external._os, "_io": _frozen_importlib_external._io,
                  "marshal": _frozen_importlib_external.marshal, "_imp": _frozen_importlib_external._imp,
                  "_bootstrap": _frozen_importlib_external._bootstrap, "ModuleSpec": ModuleSpec}
IMPORTLIB_MODULES = (("importlib._bootstrap_external", _frozen_importlib_external),
                     ("posix", _frozen_importlib_external._os), ("_io", _frozen_importlib_external._io),
                     ("marshal", _frozen_importlib_external.marshal), ("_imp", _frozen_importlib_external._imp),
                     ("importlib._bootstrap", _frozen_importlib_external._bootstrap,
                      ("_verbose_message", "ModuleSpec")))
IMPORTLIB_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


# What compiling needs of a module that plain import reads from its .pyc, or
# whose compiling looks up and imports nothing: (codec, modules).
NOTHING_TO_COMPILE = (None, ())


def compiling_needs(needs):
    """Whether `needs` is what a dump writes of what compiling a module needs:
    (an encoding name or None, a tuple of module names)."""
    return (type(needs) is tuple and len(needs) == 2 and (needs[0] is None or type(needs[0]) is str)
            and type(needs[1]) is tuple and all(type(module) is str for module in needs[1]))


def position(items, item, start=0):
    """The index of `item` itself in `items` from `start`, or -1: list.index
    compares with ==, which would run the program's __eq__."""
    for index in range(start, len(items)):
        if items[index] is item:
            return index
    return -1


def finder_name(finder):
    """A finder as the verbose lines name it, without running its code (a
    repr of the program's may fail): its class, or the class it is."""
    cls = type(finder)
    return (finder if issubclass(cls, type) else cls).__qualname__


def file_spec(name, loader, origin, package):
    """The spec FileFinder makes for the file `origin` (a package's __init__
    if `package`), but for its __cached__."""
    spec = ModuleSpec(name, loader, origin=origin, is_package=package)
    spec.has_location = True
    if package:
        spec.submodule_search_locations = [os.path.dirname(origin)]
    return spec


class ArchiveFinder:
    def __init__(self, archive, *, verbose=False, check_sources=True, release="on"):
        self.archive = archive
        self.verbose = verbose
        self.check_sources = check_sources
        self.release = release
        manifest = archive.manifest
        self.resolver = Resolver(manifest)
        self.extensions = manifest["extensions"]
        # What compiling a module does but make code, where plain import
        # compiles it at each start: the codec its coding line names, looked
        # up (which imports the codec's module the first time in a process),
        # and the modules the compiler imports (unicodedata, for a name that
        # is not ASCII or a \N{...} escape). Both done as it is served, as the
        # compiler would. Of those an archive written through the API holds,
        # only what a dump writes.
        self.compiling = {name: needs for name, needs in manifest["compiling"].items() if compiling_needs(needs)}
        self.bytecode = manifest["bytecode"]
        # What plain import runs, which the program may replace: the path
        # hooks as at start-up, and importlib's methods and functions, looked
        # at when CPython's version tags say that one of their classes or
        # modules changed.
        self.path_hooks = list(sys.path_hooks)
        self.importlib_version = version_sum(IMPORTLIB_CLASSES, IMPORTLIB_MODULES)
        self.importlib_replaced = None
        # Where PathFinder followed this finder on sys.meta_path at the last
        # look (1: not yet looked; this finder is never first there).
        self.meta_path_after = 1
        # For the CODESHARE_VERBOSE summary line: a dict, not a class of its
        # own, which cost every served start 43 k instructions more.
        self.counts = {"served": 0, "fell back": 0, "not in the archive": 0}
        # Modules whose archived code this finder gave: plain import makes new
        # code objects for each load, which a module loaded again (reloaded,
        # or imported after it left sys.modules) gets from its .pyc.
        self.given = set()

    def summary(self):
        return "codeshare: " + ", ".join(f"{what} {count}" for what, count in self.counts.items())

    def log(self, message):
        print(f"codeshare: {message}", file=sys.stderr)

    def fell_back(self, name, reason):
        self.counts["fell back"] += 1
        if self.verbose:
            self.log(f"fell back on {name}: {reason}")

    def _executed(self, loader):
        """The body of the module `loader` loaded has run: what only it used
        can go, as unmarshalled code would be freed (a no-op when its code did
        not come from the archive)."""
        if self.release != "off":
            self.archive.release(loader.name, protect=self.release == "protect")

    def invalidate_caches(self):
        self.resolver.invalidate()

    def find_spec(self, name, path=None, target=None):
        if name in self.archive:
            return self._source_spec(name, path, target)
        extension = self.extensions.get(name)
        if extension is not None:
            return self._extension_spec(name, path, target, extension)
        self.counts["not in the archive"] += 1
        if self.verbose:
            self.log(f"not in the archive: {name}")
        return None

    def _plain_import_decides(self, name, path, target):
        """(None, None) if the archive may answer for PathFinder; else why
        plain import decides, and the spec a finder of the program's found.

        Plain import would run what the program put in importlib's path
        search or source loading, once: a path hook that makes every
        directory's finder (an import hook that compiles sources its own
        way), a method of importlib's finders or loader replaced (a
        find_spec that hides a module or watches the searches, a get_code
        that compiles every source afresh, a get_data that watches what is
        read), a finder on sys.meta_path between this one and PathFinder, or
        in PathFinder's place."""
        if not same_items(sys.path_hooks, self.path_hooks):
            return "sys.path_hooks changed since start-up", None
        version = version_sum(IMPORTLIB_CLASSES, IMPORTLIB_MODULES)
        if version is None or version != self.importlib_version:
            # A class, a base or a module was modified since the last look.
            self.importlib_version = version
            self.importlib_replaced = replacement(IMPORTLIB_CLASSES, IMPORTLIB_MODULES, IMPORTLIB_HELD,
                                                  IMPORTLIB_FILES)
        if self.importlib_replaced is not None:
            return "{}.{} replaced since start-up".format(*self.importlib_replaced), None
        meta_path = sys.meta_path
        after = self.meta_path_after
        if len(meta_path) > after and meta_path[after] is PathFinder and meta_path[after - 1] is self:
            return None, None
        return self._asked_before_path_finder(meta_path, name, path, target)

    def _asked_before_path_finder(self, meta_path, name, path, target):
        """Where PathFinder stands on sys.meta_path, after this finder, and
        the finders the program put between the two (`insert(-1, ...)`, or
        at PathFinder's index), asked in turn, once each, as plain import
        would ask them: (None, None) if none found the module. A finder
        without find_spec leaves the search to importlib before any is
        asked."""
        after = position(meta_path, self) + 1
        end = position(meta_path, PathFinder, after) if after else -1
        if end < 0:
            return "PathFinder does not follow codeshare's finder on sys.meta_path", None
        if end == after:
            self.meta_path_after = after
            return None, None
        between = meta_path[after:end]
        find_specs = [getattr(finder, "find_spec", None) for finder in between]
        if any(find_spec is None for find_spec in find_specs):
            return "a finder without find_spec stands before PathFinder on sys.meta_path", None
        for finder, find_spec in zip(between, find_specs):
            spec = find_spec(name, path, target)
            if spec is not None:
                return f"{finder_name(finder)}, before PathFinder on sys.meta_path, found it", spec
        return None, None

    def _source_spec(self, name, path, target):
        reason, spec = self._plain_import_decides(name, path, target)
        if reason is not None:
            self.fell_back(name, reason)
            return spec
        try:
            metadata = self.archive.metadata(name)
        except ArchiveError as error:
            self.fell_back(name, str(error))
            return None
        record = module_record(metadata, self.resolver.searches)
        if record is None:
            self.fell_back(name, "its metadata is not what `python -m codeshare dump` writes")
            return None
        origin, package, search_index, entry_index, size, mtime_ns, cached, hashed, named = record
        reason = self.resolver.why_not(name, path, search_index, entry_index, named, origin, package)
        if reason is None:
            spec = file_spec(name, ArchiveLoader(name, origin, self, (size, mtime_ns, hashed)), origin, package)
            # As importlib would compute it (~1% of a served import) when
            # what it depends on is as at the dump; otherwise it computes it.
            if bytecode_conditions() == self.bytecode:
                spec.cached = cached
            return spec
        # Resolution may have changed: let plain import decide.
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and spec.origin == origin and type(spec.loader) is SourceFileLoader:
            if self.verbose:
                self.log(f"{name}: {reason}; the normal search found the recorded file")
            spec.loader = ArchiveLoader(name, origin, self, (size, mtime_ns, hashed))
            return spec
        self.fell_back(name, f"{reason}; the normal search found {spec and spec.origin}")
        return spec

    def _extension_spec(self, name, path, target, location):
        reason, spec = self._plain_import_decides(name, path, target)
        if reason is not None:
            self.fell_back(name, reason)
            return spec
        record = extension_record(location, self.resolver.searches)
        if record is None:
            self.fell_back(name, "its location is not what `python -m codeshare dump` writes")
            return None
        origin, package, search_index, entry_index, named = record
        reason = self.resolver.why_not(name, path, search_index, entry_index, named, origin, package)
        if reason is None and os.path.isfile(origin):
            self.counts["served"] += 1
            if self.verbose:
                self.log(f"served the location of {name}")
            return file_spec(name, ExtensionFileLoader(name, origin), origin, package)
        self.fell_back(name, reason or "extension file missing")
        return None


class ArchiveLoader(SourceFileLoader):
    """SourceFileLoader for one archived module: get_code comes from the
    archive while the source file is the one that was dumped.

    get_code and exec_module are SourceFileLoader's own, called from C
    methods around codeshare's part (this class's `_archived_code` before,
    its finder's `_executed` after; set below the class): the interpreter
    trims importlib's frames from the traceback of an exception raised
    while importing (the body's, or the compiler's on a changed source),
    and a frame of codeshare between them would keep them all, and show
    itself; `warnings` would also take it for the importer."""

    def __init__(self, fullname, path, finder, source):
        super().__init__(fullname, path)
        self._finder = finder
        self._source = source   # (st_size, st_mtime_ns, hashed) of the source at the dump

    def __eq__(self, other):
        """Compares as the SourceFileLoader it stands in for, which equals one
        of its class with the same attributes: a spec of a module not yet
        imported equals the spec the import gives it, as under plain import.
        (A subclass's __eq__ answers whichever side it is on.)"""
        if type(other) is not SourceFileLoader and type(other) is not ArchiveLoader:
            return NotImplemented
        return self.name == other.name and self.path == other.path

    __hash__ = SourceFileLoader.__hash__

    def _archived_code(self, fullname):
        """The archived code of this module, or None (SourceFileLoader's then).
        Either way this loader is from now on the SourceFileLoader plain
        import gives the module, wherever the module, its spec or a copy of
        its globals holds it, and as the body sees it: a spec then compares
        equal to one importlib makes (pydoc.importfile, for one)."""
        if fullname != self.name:
            return None
        finder, source = self._finder, self._source
        del self._finder, self._source
        self.__class__ = SourceFileLoader
        reason = None
        if finder.check_sources and not file_unchanged(self.path, *source):
            reason = "source changed since the dump"
        elif fullname in finder.given:
            reason = "loaded before in this process: plain import gives each load new code objects"
        if reason is None:
            try:
                codec, modules = finder.compiling.get(fullname, NOTHING_TO_COMPILE)
                if codec is not None:
                    _codecs.lookup(codec)
                for module in modules:
                    __import__(module)
                code = finder.archive.code(fullname)
            except (LookupError, ImportError) as error:
                reason = f"compiling it needs what cannot be found: {error}"
            except ArchiveError as error:
                reason = str(error)
            else:
                _imp._fix_co_filename(code, self.path)
                finder.given.add(fullname)
                finder.counts["served"] += 1
                if finder.verbose:
                    finder.log(f"served {fullname}")
                return code
        finder.fell_back(fullname, reason)
        return None


ArchiveLoader.get_code, ArchiveLoader.exec_module = loader_methods(ArchiveLoader)
