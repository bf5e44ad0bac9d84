"""Reading and writing codeshare archives: the Python face of `codeshare._core`.

    archive.write(path, [(module_name, code, metadata), ...], manifest=None, together=False, set_recipes=None)
    with archive.open(path) as a:   # or a = archive.open(path)
        a.names                      # module names, in archive order
        a.metadata(name)             # what was recorded with the module
        a.manifest                   # what was recorded with the whole archive
        a.code(name)                 # its code object, materialized on first call
        a.release(name)              # after running it: give back what only the body used
        a.read_ahead(after=0, now=False)  # prepare every module past the first `after` on a thread
    archive.Archive(path, keep_open=True)   # the file stays open across code() calls until a.close_file()

    archive.file_unchanged(path, size, mtime_ns, hashed=None)   # a module's source is the one dumped
    archive.may_replace(path)                                   # write() may put an archive there

Every refused archive raises `ArchiveError` with a one-line reason;
`ForeignArchiveError`, its subclass, when the archive is sound but was written
by another interpreter build or under another -O level or -X no_debug_ranges.
Metadata and manifest are any value `marshal` can write (dicts of str/int/bytes, tuples...).
"""
import marshal
import os

from . import _core

# An open archive: a type of the extension, so that the hook, which opens
# the archive at every served start, imports no module of Python for it
# (archive_type.c). Opening validates the header and module index; a
# module's objects are read, checked and materialized on first `code()`.
Archive = _core.Archive
ArchiveError = _core.ArchiveError
ForeignArchiveError = _core.ForeignArchiveError

# Whether the file at `path` has this st_size and st_mtime_ns (False if it
# cannot be stat'ed): one stat, without the stat_result os.stat builds. With
# `hashed`, (checked, hash) of a hash-based .pyc as the dump records it, by
# the hash of its content instead where import would check that .pyc.
file_unchanged = _core.file_unchanged

__all__ = ["Archive", "ArchiveError", "ForeignArchiveError", "file_unchanged", "may_replace", "open", "write"]


def may_replace(path):
    """Whether write() may put an archive at `path`: nothing is there, or a
    regular file. The archive is renamed over what the path names, which
    for /dev/null or a FIFO is not a write."""
    return not os.path.exists(path) or os.path.isfile(path)


def write(path, entries, manifest=None, *, together=False, set_recipes=None):
    """Writes an archive of `entries` (name, code, metadata) and an archive-wide
    `manifest` to `path`. `together`: the modules are a program's imports,
    loaded together in this order (every shared string is then stored and
    interned once); otherwise a collection whose modules are loaded alone
    (only widely shared strings are pooled, so that loading one module reads
    little else). `set_recipes`: {name: recipes}, how plain import makes
    the constant sets of a module, which iterate as their elements went
    in: each (order, rebuilds), a sequence of a set's own elements in the
    order they went in and how many times (0-2) the set was then made
    again in its own order (one that does not give the set's table back
    is passed over). A module's without: the order marshal would store
    them in now, which a .pyc's load inserts them in.
    Written atomically: a temporary file in the same directory, then
    rename. Readers see the old file or the new one, never a partial one
    (see may_replace)."""
    path = os.fspath(path)
    if not may_replace(path):
        raise OSError(f"{path} is not a regular file, and the archive would replace it")
    set_recipes = set_recipes or {}
    entries = [(name, code, marshal.dumps(metadata),
                tuple((tuple(order), rebuilds) for order, rebuilds in set_recipes[name])
                if name in set_recipes else None)
               for name, code, metadata in entries]
    # Beside the file `path` names as the kernel resolves it: in
    # 'link/../app.csa', '..' is taken from where the link leads.
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            _core.write(entries, marshal.dumps(manifest), together, descriptor)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def open(path):  # noqa: A001 - the natural name, as in io.open
    return Archive(path)
