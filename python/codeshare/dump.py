"""`python -m codeshare dump`: runs a program as Python would and records
every module it imports into an archive, written when the program ends
(also on sys.exit(), os._exit(), an uncaught exception, or just before an
exec replaces the process).

The program sees what `python SCRIPT`, `python -m MODULE` or `python -c CODE`
would show it: the same sys.argv, sys.path[0], __main__ module, output and
exit status, and the same modules already imported (codeshare's own and
built-in ones aside).
"""
import atexit
import builtins
import os
import posix
import sys
import types
from _frozen_importlib import BuiltinImporter
from _frozen_importlib_external import ExtensionFileLoader

from . import archive
from .recorder import Recorder
from .resolution import RECENT_NS


class Options:
    output = None
    imports = ()
    kind = None      # "script", "module", "code" or None (--import only)
    target = None
    arguments = ()


def parse(arguments):
    options = Options()
    imports = []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if argument in ("-o", "--output"):
            if index + 1 >= len(arguments):
                raise ValueError(f"{argument} needs a path")
            options.output = arguments[index + 1]
            index += 2
        elif argument == "--import":
            index += 1
            while index < len(arguments) and not arguments[index].startswith("-"):
                imports.append(arguments[index])
                index += 1
        elif argument == "--":
            index += 1
            break
        else:
            break
    rest = arguments[index:]
    if rest:
        if rest[0] in ("-c", "-m"):
            if len(rest) < 2:
                raise ValueError(f"{rest[0]} needs an argument")
            options.kind = "code" if rest[0] == "-c" else "module"
            options.target, options.arguments = rest[1], rest[2:]
        elif rest[0].startswith("-"):
            raise ValueError(f"unknown option {rest[0]}")
        else:
            options.kind, options.target, options.arguments = "script", rest[0], rest[1:]
    if options.output is None:
        raise ValueError("-o OUTPUT is required")
    if options.kind is None and not imports:
        raise ValueError("nothing to run: give a SCRIPT, -m MODULE, -c CODE or --import MODULES")
    options.imports = imports
    return options


def output_problem(output):
    """Why no archive could be written at the absolute path `output`, or
    None. Checked before the program runs, so that a run of minutes is not
    lost to a mistyped -o; a disk that fills meanwhile still shows only
    when the archive is written."""
    if os.path.isdir(output):
        return "it is a directory"
    if not archive.may_replace(output):
        return "it is not a regular file"
    directory = os.path.dirname(output)
    if not os.path.isdir(directory):
        return f"no directory {directory}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"cannot create files in {directory}"
    return None


def may_execute(path):
    """Whether an exec of `path` (a path or, for execve, a descriptor) can
    replace the process. A path exec would refuse is left to exec, to raise
    its own error."""
    if isinstance(path, int):
        return True
    try:
        return os.access(path, os.X_OK) and not os.path.isdir(path)
    except (TypeError, ValueError):
        return False


def fresh_main(**attributes):
    """A __main__ module as the interpreter starts one (a built-in module's
    loader, `__annotations__`, the builtins module itself, in the same
    order), then `attributes`."""
    module = types.ModuleType("__main__")
    module.__loader__ = BuiltinImporter
    module.__dict__.update(__annotations__={}, __builtins__=builtins)
    module.__dict__.update(attributes)
    sys.modules["__main__"] = module
    return module


def forget_imports_of_the_dump():
    """sys.modules as `python -c` or `python SCRIPT` starts with: what
    `python -m codeshare` imported after site.py (runpy and importlib,
    collections, functools... with it) is dropped, so that the program
    imports it again, recorded, in its own order, and an archive holds only
    what the program imports. codeshare's own modules stay (the dump runs
    on them), and so do built-in and extension modules (they cannot be
    created twice; none is recorded)."""
    names = list(sys.modules)
    if "site" not in names:
        return
    for name in names[names.index("site") + 1:]:
        spec = getattr(sys.modules[name], "__spec__", None)
        if (name.partition(".")[0] != "codeshare" and spec is not None
                and type(spec.loader) is not ExtensionFileLoader and spec.loader is not BuiltinImporter):
            del sys.modules[name]


def recorded_program(options):
    """The program the dump runs, as the manifest records it ("program"):
    a run of the same program starts reading ahead with the interpreter."""
    if options.kind == "script":
        return ["script", options.target]
    if options.kind == "module":
        return ["module", options.target]
    return ["code"] if options.kind == "code" else []


def run(options):
    # From the directory the dump started in: the program may change it.
    output = os.path.abspath(options.output)
    problem = output_problem(output)
    if problem is not None:
        print(f"codeshare: cannot write {options.output}: {problem}", file=sys.stderr)
        return 2
    # Serve nothing while recording (CODESHARE_ARCHIVE may be set here too).
    sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__name__ != "ArchiveFinder"]
    # The interpreter put sys.path[0] (cwd for -m) first after site.py ran.
    recorder = Recorder(site_path=sys.path[0 if sys.flags.safe_path else 1:], program=recorded_program(options))
    written = False

    def write_archive():
        nonlocal written
        if written:   # before an exec that then failed
            return
        written = True
        recorder.uninstall()
        try:
            modules, extensions, recent = recorder.write(output)
        except Exception as error:  # the program's own exit status stands
            # A MemoryError says nothing of itself: its name does.
            print(f"codeshare: could not write {options.output}: {str(error) or type(error).__name__}", file=sys.stderr)
            return
        if os.environ.get("CODESHARE_VERBOSE", "") not in ("", "0"):
            print(f"codeshare: wrote {options.output}: {modules} modules, "
                  f"{extensions} extension locations; {recent} directories changed in the "
                  f"{RECENT_NS / 1e9:g} s before the dump, listed on every run", file=sys.stderr)

    # Registered first, so it runs last: after the program's own atexit
    # handlers, which may import too.
    atexit.register(write_archive)
    # os._exit() skips atexit: the program's own process writes the
    # archive first; a child it forked exits as it would have. The stand-in
    # takes the builtin's names and its place in posix as in os (os._exit
    # is posix._exit), where pickle looks for it.
    exit_now, dump_process = os._exit, os.getpid()

    def write_archive_and_exit(status):
        if os.getpid() == dump_process:
            write_archive()
        exit_now(status)

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(write_archive_and_exit, attribute, getattr(exit_now, attribute))
    os._exit = posix._exit = write_archive_and_exit

    # An exec replaces the process, atexit and all: the archive is written
    # first, once, when the exec can succeed (execvp tries each PATH entry).
    # os.execv and os.execve (which execl, execvp... call) raise the audit
    # event "os.exec" just before they exec: an audit hook leaves them the
    # functions they are (`os.execve in os.supports_fd`), and puts no frame
    # of ours in a failed exec's traceback.
    def write_archive_before_exec(event, arguments):
        if event == "os.exec" and os.getpid() == dump_process and may_execute(arguments[0]):
            write_archive()

    sys.addaudithook(write_archive_before_exec)

    main = None
    if options.kind == "script":
        sys.argv = [options.target, *options.arguments]
        program_entry = os.path.dirname(os.path.realpath(options.target))
        script = os.path.abspath(options.target)  # as __main__.__file__ is
    elif options.kind == "code":
        sys.argv = ["-c", *options.arguments]
        program_entry = ""
    elif options.kind == "module":
        sys.argv = [options.target, *options.arguments]  # runpy sets argv[0]
        program_entry = os.getcwd()
    # The entry the interpreter put first for `-m codeshare` becomes the
    # program's; under -P (-I, PYTHONSAFEPATH) it put none, nor would for the program.
    if options.kind is not None and not sys.flags.safe_path:
        sys.path[0] = program_entry
    if options.kind != "module":   # `python -m MODULE` imports runpy too
        forget_imports_of_the_dump()
    recorder.install()

    try:
        for name in options.imports:
            __import__(name)
        if options.kind == "script":
            from _frozen_importlib_external import SourceFileLoader
            main = fresh_main(__file__=script, __cached__=None, __loader__=SourceFileLoader("__main__", script))
            with open(script, "rb") as file:
                code = compile(file.read(), script, "exec", dont_inherit=True)
            exec(code, main.__dict__)
        elif options.kind == "code":
            main = fresh_main()
            exec(compile(options.target, "<string>", "exec", dont_inherit=True), main.__dict__)
        elif options.kind == "module":
            import runpy
            main = fresh_main()
            runpy._run_module_as_main(options.target, alter_argv=True)
    except SystemExit:
        raise
    except BaseException as error:
        # As the interpreter would report it: the program's frames only.
        traceback = error.__traceback__
        user_globals = main.__dict__ if main is not None else None
        while traceback is not None and traceback.tb_frame.f_globals is not user_globals:
            traceback = traceback.tb_next
        if traceback is not None:
            error.__traceback__ = traceback  # the hook prints the exception's own
        sys.excepthook(type(error), error, error.__traceback__)
        if isinstance(error, KeyboardInterrupt):
            # The interpreter ends a program that an interrupt stopped by
            # SIGINT once it has finalized, so that its parent sees it so
            # stopped (130 in a shell): raised on, the interrupt ends the
            # dump so too, reported already.
            sys.excepthook = reported_already
            raise
        return 1
    return 0


def reported_already(*exception):
    """sys.excepthook for an exception the dump has reported as the
    interpreter would (the program's frames only)."""
