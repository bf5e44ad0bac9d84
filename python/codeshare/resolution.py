"""What an archive records about where each module was found, and the
check that plain import would still find it there.

A module found by PathFinder was searched for in a list of path entries
(`sys.path` for a top-level module, the parent package's `__path__`
otherwise) and found by the FileFinder of one entry. Plain import would pick
the same file as long as that list is the same and no directory up to and
including that entry has gained or lost a file that could be a module, nor
has a directory named like the module in one of them (FileFinder takes a
package's first __init__ file there before any module of the name, or notes
a namespace portion). The check is one stat of each directory (its mtime, as
FileFinder checks it); only when the mtime moved, or the dump could not
vouch for it, is the directory listed and its module-like names compared (an
archive written next to the script moves the mtime too). Where that fails
(another list, as from another working directory, or a directory before the
module's that gained a module of another name), the check is the module's
own: the directory it was found in is unchanged, and no directory before it
on the list (each listed once per process, as FileFinder lists it) holds
anything of the module's name. A file on the path, such as a zip archive,
means a normal search, as does a finder of the program's that
sys.path_importer_cache holds for one of those entries (checked on every
lookup: the program may put one there at any time).

Imports nothing beyond what every interpreter has loaded at start-up, and
codeshare's extension, which the hook loads first.
"""
import _imp
import marshal
import os
import sys
from _frozen_importlib_external import BYTECODE_SUFFIXES, SOURCE_SUFFIXES, FileFinder, _get_supported_file_loaders

from ._core import same_items

# The manifest a dump writes: {"version", "searches", "directories",
# "listings", "extensions", "compiling", "bytecode", "program",
# "startup"} ("compiling": {name: (codec, modules)} for a module that plain
# import compiles at each start, the encoding name of the codec its source
# is decoded through or None, and the modules compiling it imports, which a
# run looks up and imports as it serves it; "program": what the dump ran,
# ["script", path as given], ["module", name], ["code"] for -c, or [] for
# --import alone; "startup": how many modules, first in the archive, the interpreter
# imported before the program: the hook's own, and site.py's after the
# hook, sitecustomize's for one), and each module's metadata:
#     (origin, package, search, entry, size, mtime_ns, cached, hashed, named)
# the source file found, whether it is a package's __init__, the index in
# "searches" of the list searched, the index in that list of the entry whose
# FileFinder found it, the source's st_size and st_mtime_ns at the dump, the
# module's __cached__ as importlib computes it (str or None) under the
# manifest's "bytecode": (sys.implementation.cache_tag, sys.flags.optimize,
# sys.pycache_prefix) at the dump, and, where import read a hash-based .pyc
# for it, (whether that .pyc asks for its source to be checked, the hash of
# the source dumped), else None, and the directories named like the module
# in those searched up to its own (a package's own directory among them), a
# tuple of str. An extension module's location is (origin, package, search,
# entry, named): a package's __init__ may be an extension module (mypyc and
# Cython compile it). A tuple, unpacked where it is read: the finder decodes
# one per import, and a tuple of plain values decodes in a third of the time
# a dict with its interned keys takes. "directories" holds each directory searched
# up to the one a module was found in, and those named like it. Bumped when
# the meaning of any of these changes.
MANIFEST_VERSION = 11
# The type of each field of the manifest; what a field holds is checked
# where it is read (module_record, Resolver), so that an archive written
# through the API with other values falls back instead of failing an import.
MANIFEST_FIELDS = {"version": int, "searches": list, "directories": dict, "listings": dict,
                   "extensions": dict, "compiling": dict, "bytecode": tuple, "program": list, "startup": int}


def bytecode_conditions():
    """What a module's __cached__ depends on besides its source path."""
    return (sys.implementation.cache_tag, sys.flags.optimize, sys.pycache_prefix)


def manifest_problem(manifest):
    """Why an archive's manifest cannot be used to serve imports, or None."""
    if not isinstance(manifest, dict) or "version" not in manifest:
        return "not written by `python -m codeshare dump` (no import manifest)"
    if manifest["version"] != MANIFEST_VERSION:
        return (f"written by another version of codeshare (import manifest version {manifest['version']!r}, "
                f"this one reads {MANIFEST_VERSION}): dump it again")
    for field, kind in MANIFEST_FIELDS.items():
        if type(manifest.get(field)) is not kind:
            article = "an" if kind is int else "a"
            return f"not written by `python -m codeshare dump` (its manifest's {field!r} is not {article} {kind.__name__})"
    return None


def module_record(metadata, searches):
    """A module's metadata as the dump writes it, (origin, package, search,
    entry, size, mtime_ns, cached, hashed, named) with `search` an index
    into `searches`, or None."""
    if type(metadata) is not tuple or len(metadata) != 9:
        return None
    origin, _, search, entry, size, mtime_ns, cached, hashed, named = metadata
    if (type(size) is not int or type(mtime_ns) is not int or (cached is not None and type(cached) is not str)
            or (hashed is not None and not (type(hashed) is tuple and len(hashed) == 2
                                            and type(hashed[0]) is bool and type(hashed[1]) is bytes))
            or not _is_location(origin, search, entry, named, searches)):
        return None
    return metadata


def extension_record(location, searches):
    """An extension module's location as the dump writes it, (origin,
    package, search, entry, named), or None."""
    if type(location) is not tuple or len(location) != 5 or type(location[1]) is not bool:
        return None
    origin, _, search, entry, named = location
    return location if _is_location(origin, search, entry, named, searches) else None


def _is_location(origin, search, entry, named, searches):
    """Whether a file was found by the entry `entry` of the search list
    `searches[search]`, past the directories `named`, as the dump records it."""
    return (type(origin) is str and type(search) is int and type(entry) is int
            and 0 <= search < len(searches) and type(searches[search]) is list
            and type(named) is tuple and (not named or all(type(directory) is str for directory in named)))


MISSING = -1
NOT_A_DIRECTORY = -2
# Recorded instead of the mtime of a directory that had changed less than
# RECENT_NS before the dump listed it: it may have changed again within the
# same mtime tick (a jiffy on ext4, up to 2 s on other filesystems) without
# moving its mtime, so a run always compares its listing. Also for one the
# program changed after an import looked at it, whose listing is then what
# that import saw.
RECENTLY_CHANGED = -3
RECENT_NS = 2_000_000_000
_SUFFIXES = tuple(_imp.extension_suffixes()) + tuple(SOURCE_SUFFIXES) + tuple(BYTECODE_SUFFIXES)


def module_names(directory):
    """The entries of `directory` that an import could pick: possible
    packages (no dot) and files with an importable suffix."""
    try:
        names = os.listdir(directory)
    except OSError:
        return ()
    return tuple(sorted(name for name in names
                        if ("." not in name and name != "__pycache__") or name.endswith(_SUFFIXES)))


def module_stems(directory):
    """What a FileFinder of `directory` could find a module for: the name of
    each entry up to its first dot (a module's name has none, and every
    importable suffix starts with one), or None if it is not a directory
    (a zip archive's path hook would answer). A directory that is missing
    or cannot be listed gives its FileFinder nothing."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, PermissionError):
        return set()
    except OSError:
        return None
    return {name.partition(".")[0] for name in names}


def directory_mtime(path):
    """The directory's mtime in ns, or MISSING / NOT_A_DIRECTORY."""
    try:
        status = os.stat(path)
    except OSError:
        return MISSING
    if (status.st_mode & 0o170000) != 0o040000:
        return NOT_A_DIRECTORY
    return status.st_mtime_ns


def working_directory():
    """The working directory, or None once it has been removed (PathFinder
    then skips '' on the path)."""
    try:
        return os.getcwd()
    except OSError:
        return None


def path_join(*parts):
    """`parts` joined as importlib's _path_join joins them, FileFinder's
    spelling of what it looks at."""
    return "/".join(part.rstrip("/") for part in parts if part)


def entry_key(entry, cwd):
    """The directory a FileFinder of a path entry searches, spelled as it
    spells it (the origins of the modules it finds start with it): a
    relative entry ('' is the working directory) under `cwd`, or None where
    `cwd` is None. Not normalized: in 'link/../lib' the kernel takes '..'
    from where the link leads, not from the link's own directory."""
    if os.path.isabs(entry):
        return entry.rstrip("/") or entry
    if cwd is None:
        return None
    if entry in ("", "."):
        return cwd
    return path_join(cwd, entry)


def finder_kind(finder):
    """A finder in sys.path_importer_cache, as a reason names it, without
    running its code."""
    if type(finder) is FileFinder:
        return "a FileFinder with loaders of its own"
    return f"a {type(finder).__name__}"


def plain_entries(search):
    """Whether every entry of a search list is a str. PathFinder skips some
    other entries (None, a pathlib.Path) and hands bytes to the path hooks:
    a dump does not record such a list, and a run does not vouch for one."""
    return all(type(entry) is str for entry in search)


def relative_entry(entry):
    """Why a relative entry other than '' on a search path means a normal
    search: PathFinder keeps the FileFinder it first made for it, in the
    working directory of the search that made it, which only the normal
    searches of this process can tell."""
    return f"{entry!r} on the search path is relative"


def module_directory(origin, is_package):
    """The directory whose FileFinder finds the module at `origin`."""
    directory = os.path.dirname(origin)
    return os.path.dirname(directory) if is_package else directory


def module_entry(search, origin, is_package, cwd):
    """The index of the entry of `search` whose FileFinder found `origin`, or
    None (also for a list holding an entry that is not a str, or a relative
    one before it where the working directory `cwd` was removed)."""
    if not plain_entries(search):
        return None
    directory = module_directory(origin, is_package)
    for index, entry in enumerate(search):
        key = entry_key(entry, cwd)
        if key is None:
            return None
        if key == directory:
            return index
    return None


class SearchView:
    """A search list as this process finds it, for a module the dump found
    through another list or past a directory since changed: where each
    directory first stands on it, the first entry that could give a module
    of each name, and the first entry whose modules no listing tells (a
    zip archive's path hook answers for it)."""

    def __init__(self, entries):
        # '' is the one entry that follows the working directory (any other
        # relative one stops the listing): the directory it named here.
        self.follows_cwd = "" in entries
        self.cwd = working_directory() if self.follows_cwd else None
        self.keys = []
        self.first = {}         # directory -> index of its first entry
        self.holders = {}       # module name -> index of the first entry that could give one
        self.unlisted = None    # why the entries from len(keys) on are not listed
        for index, entry in enumerate(entries):
            if entry and not os.path.isabs(entry):
                self.unlisted = relative_entry(entry)
                break
            key = entry_key(entry, self.cwd)
            stems = None if key is None else module_stems(key)
            if stems is None:
                self.unlisted = ("the working directory was removed" if key is None else
                                 f"{key} is not a directory: its path hook says which modules it holds")
                break
            self.keys.append(key)
            self.first.setdefault(key, index)
            for stem in stems:
                self.holders.setdefault(stem, index)


# No finder in sys.path_importer_cache for an entry: PathFinder makes one
# with the path hooks (None there means no finder: the entry is skipped).
_NOT_CACHED = object()


class Resolver:
    """Checks recorded resolutions against the running process, caching the
    state of each directory once per process (reset by `invalidate`, which
    importlib.invalidate_caches() calls, as for FileFinder's caches)."""

    def __init__(self, manifest):
        self.searches = manifest["searches"]
        self.directories = manifest["directories"]   # directory -> mtime at the dump
        self._listings = manifest["listings"]         # directory -> its module-like names, marshalled
        self._unchanged = {}    # directory -> still as recorded
        self._trails = {}       # (search, entry, cwd or None) -> None or the reason
        self._relative = {}     # search -> holds a relative entry ('' is the cwd), or None if not all str
        self._views = {}        # a search list's entries, as a tuple -> SearchView
        # Which files are sources and which bytecode, as at start-up: a
        # FileFinder made after a program adds a suffix (the lists in
        # importlib.machinery are the path hook's own) takes files with it
        # for modules, and the first bytecode suffix names each __cached__.
        self._source_suffixes = list(SOURCE_SUFFIXES)
        self._bytecode_suffixes = list(BYTECODE_SUFFIXES)
        # What a FileFinder the path hook makes loads each suffix with, as
        # FileFinder lists them, and the finders in sys.path_importer_cache
        # found to load with just that.
        self._file_loaders = [(suffix, loader) for loader, suffixes in _get_supported_file_loaders()
                              for suffix in suffixes]
        self._plain_finders = set()

    def invalidate(self):
        self._unchanged.clear()
        self._trails.clear()
        self._views.clear()

    def why_not(self, name, path, search_index, entry_index, named, origin, package):
        """None if plain import would resolve `name` to `origin` as recorded,
        past the directories `named` like it, else the reason."""
        if not same_items(SOURCE_SUFFIXES, self._source_suffixes):
            return "importlib.machinery.SOURCE_SUFFIXES changed since start-up"
        if not same_items(BYTECODE_SUFFIXES, self._bytecode_suffixes):
            return "importlib.machinery.BYTECODE_SUFFIXES changed since start-up"
        # FileFinder takes the first __init__ file, by suffix (an extension
        # module's before a source), of a directory named like the module
        # before any module of the name, and notes one that has none as a
        # namespace portion: a package's own directory, or one that gained
        # an __init__.py or lost it.
        for directory in named:
            if not self._unchanged_since_dump(directory):
                return f"{directory} changed since the dump"
        recorded = self.searches[search_index]
        current = sys.path if path is None else path
        if type(current) is not list:
            current = list(current)
        if same_items(current, recorded):
            # The verdict on the directories searched, once per process.
            try:
                relative = self._relative[search_index]
            except KeyError:
                relative = self._relative[search_index] = (
                    not all(os.path.isabs(entry) for entry in recorded) if plain_entries(recorded) else None)
            if relative is None:
                return "the search path holds an entry that is not a str"
            cwd = None
            if relative:
                try:
                    cwd = os.getcwd()
                except OSError:
                    return "the working directory was removed"
            key = (search_index, entry_index, cwd)
            try:
                verdict = self._trails[key]
            except KeyError:
                verdict = self._trails[key] = self._trail_verdict(recorded[:entry_index + 1], cwd)
            if verdict is None:
                return self._cached_finders_verdict(recorded, entry_index, cwd)
        return self._module_verdict(name, current, origin, package)

    def _module_verdict(self, name, entries, origin, package):
        """Why plain import searching `entries` would not find `origin` for
        `name`, or None: the module's directory is unchanged since the dump,
        and no entry before it could give a module of that name."""
        if not plain_entries(entries):
            return "the search path holds an entry that is not a str"
        entries = tuple(entries)
        view = self._views.get(entries)
        if view is None or (view.follows_cwd and view.cwd != working_directory()):
            if len(self._views) >= 8:
                self._views.clear()
            view = self._views[entries] = SearchView(entries)
        directory = module_directory(origin, package)
        index = view.first.get(directory)
        if index is None:
            return view.unlisted or f"{directory} is not on the search path"
        tail = name.rpartition(".")[2]
        holder = view.holders.get(tail, index)
        if holder < index:
            return f"{view.keys[holder]} holds {tail!r} and comes before {directory} on the search path"
        if not self._unchanged_since_dump(directory):
            return f"{directory} changed since the dump"
        return self._cached_finders_verdict(entries, index, view.cwd)

    def _trail_verdict(self, entries, cwd):
        for entry in entries:
            if entry and not os.path.isabs(entry):
                return relative_entry(entry)
            key = entry_key(entry, cwd)
            if not self._unchanged_since_dump(key):
                if self.directories.get(key) == NOT_A_DIRECTORY:
                    return f"{key} is not a directory: which modules it holds was not recorded"
                return f"{key} changed since the dump"
        return None

    def _cached_finders_verdict(self, entries, last, cwd):
        """Why plain import would not search entries[:last + 1] with the
        FileFinders the path hooks make, or None. PathFinder asks the finder
        sys.path_importer_cache holds for an entry ('' under the working
        directory's path) and makes one only where it holds none: a program
        may put its own finder there, or None, which skips the entry (as
        one cached while the directory did not exist does, until
        importlib.invalidate_caches()); skipped, an entry before the
        module's holds no module of its name."""
        cache = sys.path_importer_cache
        for entry in entries[:last]:
            finder = cache.get(entry or cwd)
            if finder is not None and not self._plain_finder(finder):
                return f"sys.path_importer_cache holds {finder_kind(finder)} for {entry!r}"
        entry = entries[last]
        finder = cache.get(entry or cwd, _NOT_CACHED)
        if finder is not _NOT_CACHED and (finder is None or not self._plain_finder(finder)):
            held = "None" if finder is None else finder_kind(finder)
            return f"sys.path_importer_cache holds {held} for {entry!r}"
        return None

    def _plain_finder(self, finder):
        """Whether `finder` is a FileFinder as the path hook makes them: a
        program may make one with loaders of its own (an import hook's)."""
        if type(finder) is not FileFinder:
            return False
        if finder in self._plain_finders:
            return True
        loaders = finder._loaders
        if not (type(loaders) is list and len(loaders) == len(self._file_loaders)
                and all(type(pair) is tuple and len(pair) == 2 and type(pair[0]) is str and pair[0] == suffix
                        and pair[1] is loader for pair, (suffix, loader) in zip(loaders, self._file_loaders))):
            return False
        self._plain_finders.add(finder)
        return True

    def _unchanged_since_dump(self, directory):
        """Whether `directory` holds the module-like names it held at the
        dump, looked at once per process."""
        unchanged = self._unchanged.get(directory)
        if unchanged is None:
            unchanged = self._unchanged[directory] = self._same(directory)
        return unchanged

    def _same(self, directory):
        recorded = self.directories.get(directory)
        # A file on the search path (a zip archive): its path hook, not a
        # listing, says which modules it holds; a normal search decides.
        if type(recorded) is not int or recorded == NOT_A_DIRECTORY:
            return False
        mtime = directory_mtime(directory)
        if mtime == recorded:
            return True
        if mtime < 0 or recorded == MISSING:
            return False
        # The mtime moved, or the dump could not vouch for it.
        try:
            listing = marshal.loads(self._listings[directory])
        except (KeyError, TypeError, ValueError, EOFError):
            return False
        return module_names(directory) == listing
