"""`python -m codeshare dump`: runs a program as Python would and records
every module it imports into an archive, written when the program ends
(also on sys.exit(), os._exit(), an uncaught exception, or just before an
exec replaces the process), and not when it never started (python could
not find it, or an --import failed).

The dump is two halves of one process. `run` checks the command, then
execs the interpreter on the program, with the options the interpreter was
given before `-m codeshare`, and CODESHARE_DUMP in the environment. There
the start-up hook calls `record` as site.py runs the .pth files: it takes
CODESHARE_DUMP out of the environment and starts recording. So the
program is started by the interpreter itself: its sys.argv, sys.orig_argv,
sys.path, __main__, stack, modules, output and exit status are those
`python SCRIPT`, `python -m MODULE` or `python -c CODE` give it.
"""
import atexit
import os
import posix
import sys

from . import __path__ as package_path, archive, launched_program
from .recorder import Recorder
from .resolution import RECENT_NS

# Set by `run` for the interpreter it execs: what `record` is to do.
DUMP_VARIABLE = "CODESHARE_DUMP"
# The events the interpreter raises just before it runs the program, as
# `run` starts it (-i's interactive ones come after).
PROGRAM_START_EVENTS = ("cpython.run_command", "cpython.run_module", "cpython.run_file")


class Options:
    output = None
    imports = ()
    kind = None      # "script", "module", "code" or None (--import only)
    target = None
    arguments = ()
    help = False     # -h or --help among the dump's own options: the usage, nothing run


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
        elif argument in ("-h", "--help"):
            options.help = True
            return options
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
    for name in imports:
        if not is_module_name(name):
            raise ValueError(f"--import {name!r} is not a module name")
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


def hook_problem():
    """Why the interpreter the dump execs would not run codeshare's start-up
    hook, or None: site.py reads codeshare.pth only from a site-packages
    directory, and not at all under -S."""
    if sys.flags.no_site:
        return "-S leaves out site.py, which runs codeshare's start-up hook"
    import site
    directories = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    installed = os.path.dirname(os.path.realpath(package_path[0]))
    if not any(os.path.realpath(directory) == installed for directory in directories):
        return f"this codeshare ({installed}) is not installed in site-packages, where its start-up hook would run"
    return None


def interpreter_options():
    """The options the interpreter was given before `-m codeshare`, as they
    were given, or None if sys.orig_argv does not show them (an embedding
    application's runpy call)."""
    # sys.argv is the module's path and the dump's arguments; before them in
    # sys.orig_argv: the module's name, after -m or glued to it ("-Imcodeshare").
    position = len(sys.orig_argv) - len(sys.argv)
    if position < 1 or sys.orig_argv[position + 1:] != sys.argv[1:]:
        return None
    name = sys.orig_argv[position]
    if name.startswith("-"):
        cluster = name[:name.index("m") + 1]
    elif position >= 2 and sys.orig_argv[position - 1].startswith("-") and sys.orig_argv[position - 1].endswith("m"):
        cluster = sys.orig_argv[position - 1]
        position -= 1
    else:
        return None
    return sys.orig_argv[1:position] + ([cluster[:-1]] if len(cluster) > 2 else [])


def program_arguments(options):
    """The interpreter's arguments that run the program: --import alone runs
    empty code once the imports are done."""
    if options.kind == "script":
        return [options.target, *options.arguments]
    if options.kind == "module":
        return ["-m", options.target, *options.arguments]
    if options.kind == "code":
        return ["-c", options.target, *options.arguments]
    return ["-c", ""]


def run(options):
    """Execs the interpreter on the program, to record it; returns the exit
    status of a dump that cannot."""
    # From the directory the dump started in: the program may change it.
    # Joined, not normalized: in 'link/../app.csa' the kernel takes '..'
    # from where the link leads.
    output = os.path.join(os.getcwd(), options.output)
    problem = output_problem(output)
    if problem is not None:
        print(f"codeshare: cannot write {options.output}: {problem}", file=sys.stderr)
        return 2
    problem = hook_problem()
    options_given = interpreter_options()
    if problem is None and options_given is None:
        problem = "sys.orig_argv does not show how the interpreter was started"
    if problem is None and not sys.executable:
        problem = "sys.executable is empty"
    if problem is not None:
        print(f"codeshare: cannot dump: {problem}", file=sys.stderr)
        return 2
    environment = dict(os.environ)
    # The hook runs only where CODESHARE_ARCHIVE is set; `record` takes out
    # what the dump set, so that the program sees the environment it was given.
    added = "CODESHARE_ARCHIVE" not in environment
    if added:
        environment["CODESHARE_ARCHIVE"] = ""
    environment[DUMP_VARIABLE] = instruction(output, options.imports, added, options.kind is not None)
    arguments = [sys.orig_argv[0], *options_given, *program_arguments(options)]
    try:
        os.execve(sys.executable, arguments, environment)
    except OSError as error:
        print(f"codeshare: cannot dump: cannot run {sys.executable}: {error}", file=sys.stderr)
        return 2


def instruction(output, imports, added_archive_variable, has_program):
    """CODESHARE_DUMP's value: a line of words, then the archive's absolute
    path, whatever characters it has. The words: "+archive" when the dump
    added an empty CODESHARE_ARCHIVE, "-program" when it runs no program
    (--import alone), then the modules to import."""
    words = ["+archive"] * added_archive_variable + ["-program"] * (not has_program) + list(imports)
    return " ".join(words) + "\n" + output


def read_instruction(value):
    """(output, imports, added_archive_variable, has_program) from
    CODESHARE_DUMP's value, or None when `run` did not write it."""
    head, newline, output = value.partition("\n")
    words = head.split()
    imports = [word for word in words if word not in ("+archive", "-program")]
    if not newline or not os.path.isabs(output) or not all(is_module_name(name) for name in imports):
        return None
    return output, imports, "+archive" in words, "-program" not in words


def is_module_name(name):
    return all(part.isidentifier() for part in name.split("."))


def unset(name):
    """Takes `name` out of the environment, as a program that set it would."""
    os.environ.pop(name, None)
    posix.environ.pop(os.fsencode(name), None)   # which the .pth line reads


def record(value):
    """Called by the start-up hook under CODESHARE_DUMP: records this process's
    imports from now on and writes the archive when the process ends.
    Whether it does: a value `run` did not write is left as it is."""
    read = read_instruction(value)
    if read is None:
        print(f"codeshare: not recording: {DUMP_VARIABLE} is not one `python -m codeshare dump` sets", file=sys.stderr)
        return False
    unset(DUMP_VARIABLE)
    output, imports, added_archive_variable, has_program = read
    if added_archive_variable:
        unset("CODESHARE_ARCHIVE")
    program = launched_program() if has_program else []
    recorder = Recorder(program)
    dump_process, archive_due = os.getpid(), True
    verbose = os.environ.get("CODESHARE_VERBOSE", "") not in ("", "0")

    def program_did_not_start():
        """Python could not find the program (a mistyped script or module),
        or an --import failed: the error is out, the process exits, and an
        archive already at the output (a good one, maybe) stays as it is."""
        nonlocal archive_due
        archive_due = False
        if verbose:
            print(f"codeshare: not writing {output}: the program did not start", file=sys.stderr)

    def write_archive():
        """In the program's own process, once: not in a child it forked,
        which inherits the atexit handlers, nor after an exec that failed."""
        nonlocal archive_due
        if not archive_due or os.getpid() != dump_process:
            return
        # runpy sets sys.argv[0] to the module's file before it runs it.
        if program[:1] == ["module"] and sys.argv[:1] == ["-m"]:
            program_did_not_start()
            return
        archive_due = False
        recorder.uninstall()
        try:
            modules, extensions, recent = recorder.write(output)
        except Exception as error:  # the program's own exit status stands
            # A MemoryError says nothing of itself: its name does.
            print(f"codeshare: could not write {output}: {str(error) or type(error).__name__}", file=sys.stderr)
            return
        if verbose:
            print(f"codeshare: wrote {output}: {modules} modules, "
                  f"{extensions} extension locations; {recent} directories changed in the "
                  f"{RECENT_NS / 1e9:g} s before the dump or while it ran, listed on every run", file=sys.stderr)
            for name in recorder.left_out:
                print(f"codeshare: left {name} to plain import: its source compiles with a warning, "
                      f"which plain import shows whenever it compiles it", file=sys.stderr)

    # Registered as site.py runs, before the program's atexit handlers,
    # so it runs after them: they may import too.
    atexit.register(write_archive)
    # os._exit() skips atexit: the program's own process writes the
    # archive first. The stand-in takes the builtin's names and its place in
    # posix as in os (os._exit is posix._exit), where pickle looks for it.
    exit_now = os._exit

    def write_archive_and_exit(status):
        write_archive()
        exit_now(status)

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(write_archive_and_exit, attribute, getattr(exit_now, attribute))
    os._exit = posix._exit = write_archive_and_exit

    # Audit events: os.execv and os.execve (which execl, execvp... call)
    # raise "os.exec" just before they exec, which replaces the process,
    # atexit and all: the archive is written first, once, when the exec can
    # succeed (execvp tries each PATH entry). An audit hook leaves them the
    # functions they are (`os.execve in os.supports_fd`), and puts no frame
    # of ours in a failed exec's traceback. The program's start marks the
    # modules before it as the start-up's, and is where the --import ones
    # are imported, on the program's sys.path.
    def watch(event, arguments):
        if event == "os.exec" and may_execute(arguments[0]):
            write_archive()
        elif event == "cpython.run_file" and not os.access(arguments[0], os.R_OK):
            program_did_not_start()
        elif event in PROGRAM_START_EVENTS and not recorder.program_started:
            recorder.program_starts()
            for name in imports:
                try:
                    __import__(name)
                except Exception as error:
                    # Reported as the import's own (without this frame), and
                    # the program does not run.
                    error.__traceback__ = error.__traceback__.tb_next
                    sys.excepthook(type(error), error, error.__traceback__)
                    program_did_not_start()
                    raise SystemExit(1)

    sys.addaudithook(watch)
    recorder.install()
    return True


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
