// What Swift needs from Python.h that it cannot import directly (macros,
// global objects), and the object layout facts the archive relies on.
// Every layout constant is checked against the real headers in shim.c.
#ifndef CODESHARE_CPYTHON_SHIM_H
#define CODESHARE_CPYTHON_SHIM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

// ---- Object layouts (x86-64, CPython 3.11); see ../shared/CPYTHON311.md ----
#define CS_GC_HEAD_SIZE 16
#define CS_OBJECT_HEAD_SIZE 16          // ob_refcnt, ob_type
#define CS_VAROBJECT_HEAD_SIZE 24       // + ob_size

#define CS_CODE_BASIC_SIZE 184
#define CS_CODE_CONSTS 24
#define CS_CODE_NAMES 32
#define CS_CODE_EXCEPTIONTABLE 40
#define CS_CODE_FLAGS 48
#define CS_CODE_WARMUP 52
#define CS_CODE_LINEARRAY_ENTRY_SIZE 54
#define CS_CODE_LOCALSPLUSNAMES 96
#define CS_CODE_LOCALSPLUSKINDS 104
#define CS_CODE_FILENAME 112
#define CS_CODE_NAME 120
#define CS_CODE_QUALNAME 128
#define CS_CODE_LINETABLE 136
#define CS_CODE_WEAKREFLIST 144
#define CS_CODE_CACHED_CODE 152
#define CS_CODE_LINEARRAY 160
#define CS_CODE_EXTRA 176
#define CS_CODE_INITIAL_WARMUP (-8)

#define CS_TUPLE_ITEMS 24
#define CS_BYTES_HASH 24
#define CS_BYTES_DATA 32
#define CS_LONG_DIGITS 24
#define CS_FLOAT_VALUE 16
#define CS_COMPLEX_REAL 16
#define CS_COMPLEX_IMAG 24

#define CS_STR_LENGTH 16
#define CS_STR_HASH 24
#define CS_STR_STATE 32
#define CS_STR_WSTR 40
#define CS_ASCII_HEADER_SIZE 48         // PyASCIIObject, data follows
#define CS_STR_UTF8_LENGTH 48
#define CS_STR_UTF8 56
#define CS_STR_WSTR_LENGTH 64
#define CS_COMPACT_HEADER_SIZE 72       // PyCompactUnicodeObject, data follows

// Bits of PyASCIIObject.state (interned:2, kind:3, compact:1, ascii:1, ready:1).
#define CS_STR_STATE_INTERNED 0x3
#define CS_STR_STATE_KIND_SHIFT 2
#define CS_STR_STATE_COMPACT 0x20
#define CS_STR_STATE_ASCII 0x40
#define CS_STR_STATE_READY 0x80

// ---- Accessors for macros and globals ----
static inline PyObject *cs_none(void) { return Py_None; }
static inline PyObject *cs_true(void) { return Py_True; }
static inline PyObject *cs_false(void) { return Py_False; }
static inline PyObject *cs_ellipsis(void) { return Py_Ellipsis; }
static inline PyTypeObject *cs_type(PyObject *o) { return Py_TYPE(o); }
static inline Py_ssize_t cs_size(PyObject *o) { return Py_SIZE(o); }
static inline void cs_incref(PyObject *o) { Py_INCREF(o); }
/* `count` references at once (one add in a release build). */
static inline void cs_incref_by(PyObject *o, long count) { for (; count > 0; count--) Py_INCREF(o); }
static inline Py_ssize_t cs_refcount(PyObject *o) { return Py_REFCNT(o); }
static inline void cs_decref(PyObject *o) { Py_DECREF(o); }
static inline void cs_xdecref(PyObject *o) { Py_XDECREF(o); }

static inline PyTypeObject *cs_str_type(void) { return &PyUnicode_Type; }
static inline PyTypeObject *cs_bytes_type(void) { return &PyBytes_Type; }
static inline PyTypeObject *cs_int_type(void) { return &PyLong_Type; }
static inline PyTypeObject *cs_float_type(void) { return &PyFloat_Type; }
static inline PyTypeObject *cs_complex_type(void) { return &PyComplex_Type; }
static inline PyTypeObject *cs_tuple_type(void) { return &PyTuple_Type; }
static inline PyTypeObject *cs_frozenset_type(void) { return &PyFrozenSet_Type; }
static inline PyTypeObject *cs_code_type(void) { return &PyCode_Type; }

/* Module and class bodies: not CO_OPTIMIZED (only function blocks are). */
static inline int cs_code_is_body(PyObject *code) { return (((PyCodeObject *)code)->co_flags & CO_OPTIMIZED) == 0; }
static inline int cs_is_list(PyObject *o) { return PyList_Check(o); }
static inline int cs_is_tuple(PyObject *o) { return PyTuple_Check(o); }
static inline int cs_is_dict(PyObject *o) { return PyDict_Check(o); }
static inline int cs_is_bytes(PyObject *o) { return PyBytes_Check(o); }
static inline int cs_is_str(PyObject *o) { return PyUnicode_Check(o); }
static inline int cs_str_is_interned(PyObject *s) { return PyUnicode_CHECK_INTERNED(s) != 0; }
static inline int cs_str_kind(PyObject *s) { return PyUnicode_KIND(s); }
static inline const void *cs_str_data(PyObject *s) { return PyUnicode_DATA(s); }
static inline Py_ssize_t cs_str_length(PyObject *s) { return PyUnicode_GET_LENGTH(s); }
static inline int cs_str_is_ascii(PyObject *s) { return PyUnicode_IS_ASCII(s); }
static inline const char *cs_bytes_data(PyObject *b) { return PyBytes_AS_STRING(b); }
static inline double cs_float_value(PyObject *f) { return PyFloat_AS_DOUBLE(f); }
static inline Py_complex cs_complex_value(PyObject *c) { return PyComplex_AsCComplex(c); }

/* A class's version tag, 0 while it has no valid one. CPython takes the tag
 * away when the class or one of its bases is modified (PyType_Modified, on
 * every attribute set or deleted), and gives it a new one when an attribute
 * of it is next looked up; a class with a valid tag has bases with one. */
static inline unsigned int cs_type_version(PyObject *type) {
    PyTypeObject *t = (PyTypeObject *)type;
    return (t->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) ? t->tp_version_tag : 0;
}

/* What importlib's own functions and modules are (ImportlibReplacements.swift). */
static inline int cs_is_function(PyObject *o) { return PyFunction_Check(o); }
static inline PyObject *cs_function_filename(PyObject *f) {
    return ((PyCodeObject *)PyFunction_GET_CODE(f))->co_filename;
}
static inline int cs_is_builtin_function(PyObject *o) { return PyCFunction_Check(o); }
static inline PyObject *cs_builtin_function_self(PyObject *f) { return PyCFunction_GET_SELF(f); }
static inline const char *cs_builtin_function_name(PyObject *f) { return ((PyCFunctionObject *)f)->m_ml->ml_name; }
static inline int cs_is_method_wrapper(PyObject *o) {
    return Py_IS_TYPE(o, &PyClassMethod_Type) || Py_IS_TYPE(o, &PyStaticMethod_Type);
}
static inline int cs_is_module(PyObject *o) { return PyModule_Check(o); }
static inline PyObject *cs_type_mro(PyObject *type) { return ((PyTypeObject *)type)->tp_mro; }
static inline PyObject *cs_type_dict(PyObject *type) { return ((PyTypeObject *)type)->tp_dict; }

/* A method descriptor PyDescr_NewMethod made: the class it is defined
 * for, and the call the interpreter makes through it (its vectorcall,
 * which LOAD_METHOD's calls and tp_call go through). */
static inline PyTypeObject *cs_method_descriptor_class(PyObject *d) { return PyDescr_TYPE(d); }
static inline vectorcallfunc cs_method_descriptor_call(PyObject *d) { return ((PyMethodDescrObject *)d)->vectorcall; }
static inline void cs_set_method_descriptor_call(PyObject *d, vectorcallfunc call) {
    ((PyMethodDescrObject *)d)->vectorcall = call;
}
static inline Py_ssize_t cs_vectorcall_count(size_t nargsf) { return PyVectorcall_NARGS(nargsf); }

/* A set's hash table (PySetObject, public in 3.11): its mask, one less
 * than its number of slots, and the element in each slot (NULL if none). */
static inline Py_ssize_t cs_set_mask(PyObject *set) { return ((PySetObject *)set)->mask; }
static inline PyObject *cs_set_slot(PyObject *set, Py_ssize_t slot) { return ((PySetObject *)set)->table[slot].key; }

/* A dict's version tag (PEP 509; public in 3.11's PyDictObject): every
 * change to the dict, a key added, set or deleted, gives it the next value
 * of one interpreter-wide counter, so it only grows. */
static inline uint64_t cs_dict_version(PyObject *dict) {
    return ((PyDictObject *)dict)->ma_version_tag;
}

// Whether the error set is a MemoryError.
static inline int cs_error_is_memory(void) { return PyErr_ExceptionMatches(PyExc_MemoryError); }

// The interpreter configuration an archive depends on.
static inline int cs_optimization_level(void) {
    return _PyInterpreterState_GetConfig(PyInterpreterState_Get())->optimization_level;
}
static inline int cs_code_debug_ranges(void) {
    return _PyInterpreterState_GetConfig(PyInterpreterState_Get())->code_debug_ranges;
}

// libc pieces Swift sees only through macros or awkward structs.
static inline int cs_errno(void) { return errno; }
// O_NONBLOCK: opening a FIFO waits for a writer otherwise (it changes nothing
// for a regular file, the only kind read).
static inline int cs_open_read_only(const char *path) { return open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); }
static inline int cs_close(int fd) { return close(fd); }
static inline int cs_duplicate_at_or_above(int fd, int floor) { return fcntl(fd, F_DUPFD_CLOEXEC, floor); }
static inline int cs_pipe(int ends[2]) { return pipe2(ends, O_CLOEXEC); }
static inline ssize_t cs_read(int fd, void *buffer, size_t count) { return read(fd, buffer, count); }
static inline ssize_t cs_write(int fd, const void *buffer, size_t count) { return write(fd, buffer, count); }

// A child forked to do work that may trap (ForkedChild.swift).
/* Whether the process handles SIGCHLD with a handler of its own (the
   program's, through the signal module or C): it would see a child's end. */
static inline int cs_child_signal_handled(void) {
    struct sigaction action;
    if (sigaction(SIGCHLD, NULL, &action) != 0) return 1;
    return (action.sa_flags & SA_SIGINFO) || (action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN);
}
/* Whether no thread but this one has a Python thread state, in any
   interpreter: none can then hold a lock of the interpreter's that a
   forked child, a copy of this thread alone, would wait on. The GIL keeps
   the lists from changing under this walk but for a thread state made
   outside it (PyGILState_Ensure), which only adds one. */
static inline int cs_only_thread_state(void) {
    PyThreadState *own = PyThreadState_Get();
    for (PyInterpreterState *interpreter = PyInterpreterState_Head(); interpreter != NULL;
         interpreter = PyInterpreterState_Next(interpreter)) {
        for (PyThreadState *state = PyInterpreterState_ThreadHead(interpreter); state != NULL;
             state = PyThreadState_Next(state)) {
            if (state != own) return 0;
        }
    }
    return 1;
}
/* The signal that ended a child, from its wait status; 0 if it exited. */
static inline int cs_ending_signal(int status) { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
/* The signals a trap or a crash raises, back to their default action: in the
   child, a handler of the program's (faulthandler's, say) would report the
   parent's threads as crashed. */
static inline void cs_default_crash_signals(void) {
    static const int crashes[] = { SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT };
    for (size_t index = 0; index < sizeof crashes / sizeof crashes[0]; index++) signal(crashes[index], SIG_DFL);
}

// What identifies an open file: whether it is a regular file, its device,
// inode, size and mtime in ns.
static inline int cs_file_identity(int fd, int *regular, unsigned long long *device, unsigned long long *inode,
                                   unsigned long long *size, long long *mtime_ns) {
    struct stat status;
    if (fstat(fd, &status) != 0) return -1;
    *regular = S_ISREG(status.st_mode);
    *device = (unsigned long long)status.st_dev;
    *inode = (unsigned long long)status.st_ino;
    *size = (unsigned long long)status.st_size;
    *mtime_ns = (long long)status.st_mtim.tv_sec * 1000000000LL + status.st_mtim.tv_nsec;
    return 0;
}

// The st_size and st_mtime_ns of a path (following symlinks, as os.stat does).
static inline int cs_path_size_and_mtime(const char *path, long long *size, long long *mtime_ns) {
    struct stat status;
    if (stat(path, &status) != 0) return -1;
    *size = (long long)status.st_size;
    *mtime_ns = (long long)status.st_mtim.tv_sec * 1000000000LL + status.st_mtim.tv_nsec;
    return 0;
}

// Anonymous private memory (MAP_FAILED is a macro Swift cannot see): NULL on failure.
static inline void *cs_map_anonymous(size_t length) {
    void *memory = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
}
static inline int cs_unmap(void *start, size_t length) { return munmap(start, length); }
/* Faults in the pages holding [start, start + length) for writing without
   changing what they hold (Linux 5.14+, MADV_POPULATE_WRITE): -1 if it
   cannot. Another thread may be writing to those pages meanwhile. */
static inline int cs_fault_in(void *start, size_t length) {
    uintptr_t first = (uintptr_t)start & ~(uintptr_t)4095;
    return madvise((void *)first, (uintptr_t)start + length - first, MADV_POPULATE_WRITE);
}
/* The same by writing to each page: since Linux 6.4 such a fault holds
   only its mapping's own lock, not the whole address space's as
   MADV_POPULATE_WRITE does, so while a huge page that the host backs anew
   is zeroed (~15 ms on this VM) the interpreter's mmap and brk go on.
   Each write is a compare-and-swap of 0 with 0: it changes nothing, and
   no store another thread makes to the byte meanwhile is lost. Only for
   memory that is never made inaccessible, where the write cannot fault
   for good. */
static inline void cs_touch_pages(void *start, size_t length) {
    for (uintptr_t page = (uintptr_t)start & ~(uintptr_t)4095; page < (uintptr_t)start + length; page += 4096) {
        unsigned char expected = 0;
        __atomic_compare_exchange_n((unsigned char *)page, &expected, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    }
}
static inline int cs_advise_huge_pages(void *start, size_t length) { return madvise(start, length, MADV_HUGEPAGE); }
/* The pages' contents are dropped: reading them again gives zeros, or, with
   `protect`, a fault. */
static inline int cs_discard_pages(void *start, size_t length, int protect) {
    if (protect && mprotect(start, length, PROT_NONE) != 0) return -1;
    return madvise(start, length, MADV_DONTNEED);
}
/* The pages of `count` ranges dropped in one call, process_madvise(2) on
   this process (PIDFD_SELF_THREAD_GROUP, -10001, names it without a
   descriptor; MADV_DONTNEED through it needs Linux 6.13): the bytes
   dropped, in range order, or -1 with errno set (ENOSYS, EBADF or EINVAL
   where the kernel cannot; EPERM under a filter that refuses it). */
static inline long cs_discard_ranges(const struct iovec *ranges, size_t count) {
    return syscall(SYS_process_madvise, -10001, ranges, count, MADV_DONTNEED, 0);
}

// The read-ahead thread (ReadAhead.swift) and the part states it shares
// with the interpreter's threads (PartPreparer.swift).
static inline unsigned cs_load_acquire(const unsigned *state) { return __atomic_load_n(state, __ATOMIC_ACQUIRE); }
static inline void cs_store_release(unsigned *state, unsigned value) { __atomic_store_n(state, value, __ATOMIC_RELEASE); }
/* A pool string's interned object, once the interpreter's thread has it
   (ArchiveReader.intern stores, PartPreparer.relocate loads). */
static inline PyObject *cs_load_acquire_object(PyObject *const *slot) { return __atomic_load_n(slot, __ATOMIC_ACQUIRE); }
static inline void cs_store_release_object(PyObject **slot, PyObject *value) { __atomic_store_n(slot, value, __ATOMIC_RELEASE); }
static inline int cs_compare_exchange(unsigned *state, unsigned expected, unsigned desired) {
    return __atomic_compare_exchange_n(state, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline void cs_add_relaxed(long *counter, long value) { __atomic_fetch_add(counter, value, __ATOMIC_RELAXED); }
static inline long cs_load_relaxed(const long *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }
static inline void cs_yield(void) { sched_yield(); }
/* Asks for the lines of [start, start + length) in this core's cache, to be
   written: a part the read-ahead thread prepared sits in its core's cache,
   and the slots publish fills and the module body that runs next would
   otherwise fetch its lines one at a time, each a transfer from that core.
   For baseline x86-64 the compiler emits a plain prefetch (`prefetcht0`);
   `prefetchw` measured the same (34th session, scripts/benchmarks/README). */
static inline void cs_prefetch_for_write(const void *start, size_t length) {
    const char *end = (const char *)start + length;
    for (const char *line = (const char *)((uintptr_t)start & ~(uintptr_t)63); line < end; line += 64) {
        __builtin_prefetch(line, 1, 3);
    }
}
static inline unsigned cs_load_ordered(const unsigned *word) { return __atomic_load_n(word, __ATOMIC_SEQ_CST); }
static inline void cs_store_ordered(unsigned *word, unsigned value) { __atomic_store_n(word, value, __ATOMIC_SEQ_CST); }
/* Sleeps while *word == value, at most `microseconds`: 1 if the time ran out. */
static inline int cs_wait_while_equal(unsigned *word, unsigned value, long microseconds) {
    struct timespec timeout = { microseconds / 1000000, (microseconds % 1000000) * 1000 };
    return syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, &timeout, NULL, 0) != 0 && errno == ETIMEDOUT;
}
static inline void cs_wake_waiters(unsigned *word) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0); }
static inline int cs_process_id(void) { return (int)getpid(); }
static inline int cs_usable_cpus(void) {
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}
/* A thread with every signal blocked (the interpreter's own threads handle
   them), on a stack of 512 KiB, not the default 8 MiB: its frames need a few
   KiB, and under an address-space limit (ulimit -v) the default stack alone
   made the process run out where plain Python does not. It starts on
   another CPU than the caller's (shim.c). */
int cs_thread_start(pthread_t *thread, void *(*body)(void *), void *argument);
static inline int cs_thread_join(pthread_t thread) { return pthread_join(thread, NULL); }
static inline int cs_thread_detach(pthread_t thread) { return pthread_detach(thread); }
/* The fork guard (shim.c): fork waits while it is held, and `child` runs in
   every child this process forks from now on, holding it (it must unlock). */
void cs_fork_guard_lock(void);
void cs_fork_guard_unlock(void);
int cs_at_fork(void (*child)(void));
/* CPython's str hash (unicode_hash in 3.11), which needs no interpreter state
   but the hash secret set at start-up. */
static inline Py_hash_t cs_str_hash(PyObject *s) {
    return _Py_HashBytes(PyUnicode_DATA(s), PyUnicode_GET_LENGTH(s) * PyUnicode_KIND(s));
}
static inline void cs_str_set_hash(PyObject *s, Py_hash_t hash) { ((PyASCIIObject *)s)->hash = hash; }

// Method table plumbing: Swift passes C function pointers in.
PyObject *cs_module_create(const char *name, PyMethodDef *methods);
/* ArchiveError and its subclass ForeignArchiveError (exception_types.c),
   ready; borrowed references, -1 with an exception set on failure. */
int cs_exception_types_ready(PyObject **archive, PyObject **foreign);
extern PyTypeObject cs_archive_error;

/* codeshare.archive.Archive (archive_type.c): an open archive. Its Python
   protocol (arguments, names to indexes, messages that name the archive) is
   C; everything the reader does is Swift's (ArchiveObject.swift), through
   the cs_reader_* functions below. */
typedef struct {
    PyObject_HEAD
    void *reader;        /* the ArchiveReader, owned; NULL until opened */
    PyObject *path;      /* str, as given */
    PyObject *names;     /* list of str, in archive order */
    PyObject *index;     /* dict: name -> its index in names */
    PyObject *manifest;  /* what was recorded with the whole archive */
} CSArchiveObject;
/* The type, ready; a borrowed reference, NULL with an exception set. */
PyObject *cs_archive_type_ready(void);
/* Swift's side: each returns a new reference, or NULL (-1) with an
   exception set. */
int cs_reader_open(CSArchiveObject *archive, PyObject *path, int keep_open);
void cs_reader_close(void *reader);
void cs_reader_close_file(void *reader);
PyObject *cs_reader_metadata(void *reader, Py_ssize_t index);
PyObject *cs_reader_code(void *reader, Py_ssize_t index);
PyObject *cs_reader_release(void *reader, Py_ssize_t index, int protect);
PyObject *cs_reader_read_ahead(void *reader, Py_ssize_t after, int now);
PyObject *cs_reader_header(void *reader);
PyObject *cs_reader_stats(void *reader);
PyObject *cs_reader_census(void *reader, PyObject *names);

#endif
