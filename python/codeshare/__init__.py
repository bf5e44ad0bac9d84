"""codeshare: serve CPython 3.11 imports from an archive of live code objects.

`codeshare.archive` reads and writes archives. This package's body is the
start-up hook: codeshare.pth imports it and calls install() when
CODESHARE_ARCHIVE is set. It imports nothing else until install() runs.

install() opens the archive and puts an ArchiveFinder on sys.meta_path just
before PathFinder (after the built-in and frozen importers). An unusable
archive gives one warning line and the program runs normally; a foreign one
(another interpreter build, -O level or -X no_debug_ranges setting: a child
process run with other flags inherits CODESHARE_ARCHIVE), and a relative
path that names no file (a child started in another directory inherits
it too), give it only under CODESHARE_VERBOSE, so that the child's output
is plain's. Under -E and -I, which make the interpreter ignore its own
PYTHON* variables, codeshare ignores its variables too.

Whatever install() decides, the program finds none of this package's
modules in sys.modules, nor the finder of its directory in
sys.path_importer_cache. site.py may process a .pth file twice (it does
in venvs, handing both passes one set of the paths it knows,
`known_paths`): install() adds "codeshare" to that set, which holds
absolute paths only and which the program never sees, and the .pth line
tests it first, so that the second pass neither compiles the rest (0.18 M
instructions of every served start) nor imports this package again where
install() served nothing (an empty CODESHARE_ARCHIVE, -E, -I: 0.8 M). A
program that runs site.addsitedir() on this directory runs the hook again,
with a set of its own: install() then finds its finder in place. The .pth
line imports this package from the site directory it is in (site.py's
`sitedir`), put first on sys.path for that one import, so that no other
`codeshare` on PYTHONPATH stands in for it. Everything but the environment
check is a string literal in the .pth line, compiled only when
CODESHARE_ARCHIVE is set: site.py compiles each .pth line in every process.
The hook lives here, not in a module of its own, because each module the
hook imports costs ~0.1 ms of every served start; for the same reason a
dump puts the modules it imports (HOOK_MODULES) first in its archive, and
a start runs them from there when the installed files are the dumped ones.

    CODESHARE_ARCHIVE=app.csa   the archive to serve imports from
    CODESHARE_VERBOSE=1         one stderr line per import, a summary at exit
    CODESHARE_CHECK=none        trust the archive: no stat of each source
    CODESHARE_RELEASE=off       keep what only module bodies used (default: give
                                its pages back once a body has run); =protect
                                also makes those pages fault on any later access
    CODESHARE_READAHEAD=off     prepare each module when it is imported (default:
                                a thread prepares them all in import order)

`python -m codeshare dump` execs the interpreter on the program with
CODESHARE_DUMP set (and CODESHARE_ARCHIVE, empty if it was not set, for the
.pth line): install() then records the imports instead (dump.record), and
the program finds neither variable set by the dump in its environment.
"""
import os
import sys


def launched_program():
    """The program this interpreter runs, as a dump records it (the
    manifest's "program"), from sys.argv as the interpreter sets it before
    site.py runs: the script as given, or "-c" or "-m" alone, the module's
    name then being the item of sys.orig_argv before the program's own
    arguments."""
    head = sys.argv[0] if sys.argv else ""
    if head == "-c":
        return ["code"]
    if head == "-m":
        # An embedding interpreter may have set sys.argv without orig_argv.
        name = sys.orig_argv[-len(sys.argv)] if len(sys.orig_argv) >= len(sys.argv) else ""
        return ["module", name[2:] if name.startswith("-m") else name]
    return ["script", head]


# The modules install() imports, each after those it imports. Run from the
# archive (no search, .pyc read or unmarshal), the two save ~0.1 ms of a
# served start.
HOOK_MODULES = ("codeshare.resolution", "codeshare.finder")


def hook_source(name):
    """Where this installation's hook module `name` is."""
    return os.path.join(__path__[0], name.rpartition(".")[2] + ".py")


def load_extension():
    """codeshare._core, from the file the build puts beside this one: a
    search of this package's directory (a zipimport attempt, a FileFinder
    and its listing) costs ~0.06 ms of every served start. Imported as
    usual when that file is not there."""
    from _frozen_importlib import ModuleSpec, module_from_spec
    from _frozen_importlib_external import EXTENSION_SUFFIXES, ExtensionFileLoader
    name = "codeshare._core"
    path = os.path.join(__path__[0], "_core" + EXTENSION_SUFFIXES[0])
    loader = ExtensionFileLoader(name, path)
    spec = ModuleSpec(name, loader, origin=path)
    spec.has_location = True
    try:
        module = module_from_spec(spec)
    except ImportError:
        from . import _core
        return _core
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def run_hook_modules(core, archive, verbose, release):
    """Puts in sys.modules each hook module whose archived code is that of
    its installed file, run from the archive. The source is checked even
    under CODESHARE_CHECK=none: an archive dumped by another installation
    of codeshare holds code written for that one's extension. install()
    imports the others."""
    for name in HOOK_MODULES:
        if name not in archive:
            continue
        origin = hook_source(name)
        try:
            metadata = archive.metadata(name)
            # resolution.module_record's shape check, written out: resolution
            # is one of the modules this runs. The source is checked as any
            # module's: by its hash where its .pyc was hash-based at the dump.
            if not (type(metadata) is tuple and len(metadata) == 9 and metadata[0] == origin
                    and type(metadata[4]) is int and type(metadata[5]) is int
                    and (metadata[7] is None or type(metadata[7]) is tuple and len(metadata[7]) == 2
                         and type(metadata[7][0]) is bool and type(metadata[7][1]) is bytes)
                    and core.file_unchanged(origin, metadata[4], metadata[5], metadata[7])):
                if verbose:
                    print(f"codeshare: imported the hook's {name}: {origin} is not the file dumped", file=sys.stderr)
                continue
            code = archive.code(name)
        except core.ArchiveError as error:
            if verbose:
                print(f"codeshare: imported the hook's {name}: {error}", file=sys.stderr)
            continue
        # Only what the module's own code uses: no program sees these modules
        # (install() takes them out of sys.modules), and a spec and its
        # loader would cost ~0.01 ms each.
        module = sys.modules[name] = type(sys)(name)
        module.__file__, module.__package__ = origin, "codeshare"
        exec(code, module.__dict__)
        if release != "off":
            archive.release(name, protect=release == "protect")
        if verbose:
            print(f"codeshare: ran the hook's {name} from the archive", file=sys.stderr)


def install(known_paths):
    loaded = set(sys.modules)
    known_paths.add("codeshare")
    try:
        path = os.environ.get("CODESHARE_ARCHIVE")
        dump = os.environ.get("CODESHARE_DUMP")
        # Under -E and -I the interpreter ignores PYTHONPATH and the rest, so
        # that the environment cannot choose the code it runs: nor may it
        # through an archive. Decided here, not in the .pth line, where each
        # test compiled costs every start (~80 k instructions a served one).
        # A dump, which serves nothing, records under them too.
        if dump is None and (not path or sys.flags.ignore_environment):
            return
        # The hook run again (site.addsitedir): one finder, one archive.
        if any(type(finder).__module__ == "codeshare.finder" for finder in sys.meta_path):
            return
        core = load_extension()
        if dump is not None:
            from .dump import record
            # One it cannot read is reported, and serving goes on as usual.
            if record(dump) or not path or sys.flags.ignore_environment:
                return
        verbose = os.environ.get("CODESHARE_VERBOSE", "") not in ("", "0")
        check = os.environ.get("CODESHARE_CHECK", "mtime")
        release = os.environ.get("CODESHARE_RELEASE", "on")
        read_ahead = os.environ.get("CODESHARE_READAHEAD", "on")
        try:
            # Open until close_file(): the reads of the hook's own modules
            # need no open of their own.
            archive = core.Archive(path, keep_open=True)
        except core.ArchiveError as error:
            # A child started in another directory inherits a relative path
            # that names nothing there, as it may inherit a foreign archive.
            inherited = isinstance(error, core.ForeignArchiveError) or not (os.path.isabs(path) or os.path.exists(path))
            if verbose or not inherited:
                print(f"codeshare: not using the archive: {error}", file=sys.stderr)
            return
        try:
            run_hook_modules(core, archive, verbose, release)
        finally:
            archive.close_file()
        from .finder import ArchiveFinder
        from .resolution import manifest_problem
        problem = manifest_problem(archive.manifest)
        if problem is not None:
            print(f"codeshare: not using the archive: {path}: {problem}", file=sys.stderr)
            return
        if check not in ("none", "mtime"):
            print(f"codeshare: CODESHARE_CHECK={check!r} is not 'none' or 'mtime'; checking mtimes",
                  file=sys.stderr)
        if release not in ("on", "off", "protect"):
            print(f"codeshare: CODESHARE_RELEASE={release!r} is not 'on', 'off' or 'protect'; releasing",
                  file=sys.stderr)
            release = "on"
        if read_ahead not in ("on", "off"):
            print(f"codeshare: CODESHARE_READAHEAD={read_ahead!r} is not 'on' or 'off'; reading ahead",
                  file=sys.stderr)
        if read_ahead != "off":
            # The program the archive was dumped for has its first modules
            # prepared while the interpreter finishes starting up; another
            # (a child that inherited CODESHARE_ARCHIVE) starts no thread
            # until it imports one of the archive's own.
            archive.read_ahead(after=archive.manifest["startup"], now=archive.manifest["program"] == launched_program())
        finder = ArchiveFinder(archive, verbose=verbose, check_sources=check != "none", release=release)
        position = next((index for index, entry in enumerate(sys.meta_path)
                         if getattr(entry, "__name__", None) == "PathFinder"), len(sys.meta_path))
        sys.meta_path.insert(position, finder)
        if verbose:
            import atexit
            atexit.register(lambda: print(finder.summary(), file=sys.stderr))
    finally:
        # The program sees the modules it would see without codeshare: none
        # the hook imported (its own, and built-in ones such as atexit), nor
        # this package, which the .pth line imported; and no finder of this
        # package's directory. The finder and the recorder keep what they
        # need alive. A codec's module stays (under -X dev, loading an
        # extension module looks up "ascii"): the codec registry keeps the
        # codec for the process, and the program's first extension module
        # would have imported it; imported again, it would not be the
        # codec's.
        for name in [name for name in sys.modules if name not in loaded and not name.startswith("encodings.")]:
            del sys.modules[name]
        sys.modules.pop(__name__, None)
        for directory in __path__:
            sys.path_importer_cache.pop(directory, None)
