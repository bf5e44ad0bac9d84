"""python -m codeshare: dump, info and verify archives (USAGE)."""
import os
import sys

# Not the docstring: -OO strips it.
USAGE = """\
    python -m codeshare dump -o OUT [--import MOD ...] [-c CODE | -m MODULE | SCRIPT] [ARGS...]
    python -m codeshare info ARCHIVE
    python -m codeshare verify ARCHIVE"""


def show_usage():
    print(USAGE)
    return 0


def fail(message):
    print(f"codeshare: {message}\n{USAGE}", file=sys.stderr)
    return 2


def main(argv):
    if not argv:
        return fail("no command given")
    if argv[0] in ("-h", "--help"):
        return show_usage()
    command, arguments = argv[0], argv[1:]
    if command == "dump":
        from .dump import parse, run
        try:
            options = parse(arguments)
        except ValueError as error:
            return fail(str(error))
        if options.help:
            return show_usage()
        return run(options)
    if command in ("info", "verify"):
        if arguments in (["-h"], ["--help"]):
            return show_usage()
        if len(arguments) != 1:
            return fail(f"{command} takes one archive path")
        from . import inspection
        try:
            return getattr(inspection, command)(arguments[0])
        except BrokenPipeError:
            # A reader that stopped early (`| head`): end quietly, as `cat`
            # does, without a traceback or a second error at exit's flush.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    return fail(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
