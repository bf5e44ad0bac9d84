"""Reading and writing codeshare archives: the Python face of `codeshare._core`.

    archive.write(path, [(module_name, code, metadata), ...], manifest=None, together=False)
    with archive.open(path) as a:   # or a = archive.open(path)
        a.names                      # module names, in archive order
        a.metadata(name)             # what was recorded with the module
        a.manifest                   # what was recorded with the whole archive
        a.code(name)                 # its code object, materialized on first call
        a.release(name)              # after running it: give back what only the body used
        a.read_ahead(after=0, now=False)  # prepare every module past the first `after` on a thread

    archive.file_unchanged(path, size, mtime_ns)   # a module's source is the one dumped
    archive.may_replace(path)                      # write() may put an archive there

Every refused archive raises `ArchiveError` with a one-line reason;
`ForeignArchiveError`, its subclass, when the archive is sound but was written
by another interpreter build or under another -O level or -X no_debug_ranges.
Metadata and manifest are any value `marshal` can write (dicts of str/int/bytes, tuples...).
"""
import marshal
import os

from . import _core

ArchiveError = _core.ArchiveError
ForeignArchiveError = _core.ForeignArchiveError

# Whether the file at `path` has this st_size and st_mtime_ns (False if it
# cannot be stat'ed): one stat, without the stat_result os.stat builds.
file_unchanged = _core.file_unchanged

__all__ = ["Archive", "ArchiveError", "ForeignArchiveError", "file_unchanged", "may_replace", "open", "write"]


def may_replace(path):
    """Whether write() may put an archive at `path`: nothing is there, or a
    regular file. The archive is renamed over what the path names, which
    for /dev/null or a FIFO is not a write."""
    return not os.path.exists(path) or os.path.isfile(path)


def write(path, entries, manifest=None, *, together=False):
    """Writes an archive of `entries` (name, code, metadata) and an archive-wide
    `manifest` to `path`. `together`: the modules are a program's imports,
    loaded together in this order (every shared string is then stored and
    interned once); otherwise a collection whose modules are loaded alone
    (only widely shared strings are pooled, so that loading one module reads
    little else). Written atomically:
    a temporary file in the same directory, then rename. Readers see the old
    file or the new one, never a partial one (see may_replace)."""
    path = os.fspath(path)
    if not may_replace(path):
        raise OSError(f"{path} is not a regular file, and the archive would replace it")
    entries = [(name, code, marshal.dumps(metadata)) for name, code, metadata in entries]
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
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


class Archive:
    """An open archive. Opening validates the header and module index; a
    module's objects are read, checked and materialized on first `code()`."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self._handle, self.names, self._metadata, manifest = _core.open(self.path)
        except ArchiveError as error:
            raise type(error)(f"{self.path}: {error}") from None
        self._index = {name: index for index, name in enumerate(self.names)}
        self.manifest = marshal.loads(manifest)

    def __contains__(self, name):
        return name in self._index

    def __len__(self):
        return len(self.names)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    @property
    def header(self):
        """The header as a dict: schema_version, python_version, created, ..."""
        return _core.header(self._handle)

    @property
    def stats(self):
        """What this process has read: modules_loaded, chunks_loaded, bytes_read, bytes_released."""
        return _core.stats(self._handle)

    def census(self):
        """Reads and checks every segment without materializing anything:
        ({type name: (count, bytes)}, {module: segment bytes}, pool bytes)."""
        try:
            by_type, sizes, pool = _core.census(self._handle)
        except ArchiveError as error:
            raise ArchiveError(f"{self.path}: {error}") from None
        return by_type, dict(zip(self.names, sizes)), pool

    def metadata(self, name):
        return marshal.loads(self._metadata[self._index[name]])

    def code(self, name):
        """The module's top-level code object; the same object on every call
        until `release` gives it back."""
        try:
            return _core.load(self._handle, self._index[name])
        except ArchiveError as error:
            raise ArchiveError(f"{self.path}: module {name}: {error}") from None

    def read_ahead(self, *, after=0, now=False):
        """Has every module past the first `after` prepared (read, checked,
        relocated) on another thread, in archive order, so that `code()`
        mostly finds its module ready and only fills in the interpreter's
        own objects. The thread starts `now`, or else at the first `code()`
        of one of those modules; it keeps at most 16 modules ahead of the
        imports (of the first of them, until they start), and ends once the
        imports have paused for 2 s. Only for an archive of one program's
        imports (`together`) of 2 MiB or more, on a machine with a second
        core; returns whether the thread will start."""
        return _core.read_ahead(self._handle, after, now)

    def release(self, name, *, protect=False):
        """Once the module's code has run: gives back the memory of what only
        the module and class bodies used and nothing references any more (a
        program's imports: ~5% of its memory), 64 KiB at a time: a call may
        give back another module's pages, or leave its own for a later one.
        `protect`: at once, and those pages also fault on any later access
        (a debugging aid). Returns the bytes this call gave back."""
        return _core.release(self._handle, self._index[name], protect)


def open(path):  # noqa: A001 - the natural name, as in io.open
    return Archive(path)
