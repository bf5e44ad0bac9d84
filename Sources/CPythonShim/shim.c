// Compile-time proof that the layout constants of CPythonShim.h match the
// interpreter being built for. A mismatch fails the build, never a process.
// Py_BUILD_CORE only here, for PyGC_Head (internal since 3.9), which archived
// tuples carry in front of them.
#define Py_BUILD_CORE
#include "CPythonShim.h"
#include "internal/pycore_gc.h"
#include <stddef.h>

#ifdef Py_TRACE_REFS
#error "codeshare does not support Py_TRACE_REFS builds (different object header)"
#endif
#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "codeshare lays out CPython 3.11 objects only"
#endif

#define CHECK(type, field, value) \
    _Static_assert(offsetof(type, field) == (value), #type "." #field " moved")

_Static_assert(sizeof(PyGC_Head) == CS_GC_HEAD_SIZE, "PyGC_Head size");
_Static_assert(sizeof(PyObject) == CS_OBJECT_HEAD_SIZE, "PyObject size");
_Static_assert(sizeof(PyVarObject) == CS_VAROBJECT_HEAD_SIZE, "PyVarObject size");
_Static_assert(sizeof(void *) == 8 && sizeof(wchar_t) == 4, "x86-64 Linux only");

CHECK(PyCodeObject, co_consts, CS_CODE_CONSTS);
CHECK(PyCodeObject, co_names, CS_CODE_NAMES);
CHECK(PyCodeObject, co_exceptiontable, CS_CODE_EXCEPTIONTABLE);
CHECK(PyCodeObject, co_flags, CS_CODE_FLAGS);
CHECK(PyCodeObject, co_warmup, CS_CODE_WARMUP);
CHECK(PyCodeObject, _co_linearray_entry_size, CS_CODE_LINEARRAY_ENTRY_SIZE);
CHECK(PyCodeObject, co_localsplusnames, CS_CODE_LOCALSPLUSNAMES);
CHECK(PyCodeObject, co_localspluskinds, CS_CODE_LOCALSPLUSKINDS);
CHECK(PyCodeObject, co_filename, CS_CODE_FILENAME);
CHECK(PyCodeObject, co_name, CS_CODE_NAME);
CHECK(PyCodeObject, co_qualname, CS_CODE_QUALNAME);
CHECK(PyCodeObject, co_linetable, CS_CODE_LINETABLE);
CHECK(PyCodeObject, co_weakreflist, CS_CODE_WEAKREFLIST);
CHECK(PyCodeObject, _co_code, CS_CODE_CACHED_CODE);
CHECK(PyCodeObject, _co_linearray, CS_CODE_LINEARRAY);
CHECK(PyCodeObject, co_extra, CS_CODE_EXTRA);
CHECK(PyCodeObject, co_code_adaptive, CS_CODE_BASIC_SIZE);
_Static_assert(sizeof(_Py_CODEUNIT) == 2, "code unit size");

CHECK(PyTupleObject, ob_item, CS_TUPLE_ITEMS);
CHECK(PyBytesObject, ob_shash, CS_BYTES_HASH);
CHECK(PyBytesObject, ob_sval, CS_BYTES_DATA);
CHECK(PyLongObject, ob_digit, CS_LONG_DIGITS);
_Static_assert(PYLONG_BITS_IN_DIGIT == 30 && sizeof(digit) == 4, "30-bit digits");
CHECK(PyFloatObject, ob_fval, CS_FLOAT_VALUE);
CHECK(PyComplexObject, cval.real, CS_COMPLEX_REAL);
CHECK(PyComplexObject, cval.imag, CS_COMPLEX_IMAG);

CHECK(PyASCIIObject, length, CS_STR_LENGTH);
CHECK(PyASCIIObject, hash, CS_STR_HASH);
CHECK(PyASCIIObject, state, CS_STR_STATE);
CHECK(PyASCIIObject, wstr, CS_STR_WSTR);
_Static_assert(sizeof(PyASCIIObject) == CS_ASCII_HEADER_SIZE, "PyASCIIObject size");
CHECK(PyCompactUnicodeObject, utf8_length, CS_STR_UTF8_LENGTH);
CHECK(PyCompactUnicodeObject, utf8, CS_STR_UTF8);
CHECK(PyCompactUnicodeObject, wstr_length, CS_STR_WSTR_LENGTH);
_Static_assert(sizeof(PyCompactUnicodeObject) == CS_COMPACT_HEADER_SIZE, "PyCompactUnicodeObject size");

PyObject *cs_module_create(const char *name, PyMethodDef *methods) {
    static PyModuleDef def = {PyModuleDef_HEAD_INIT};
    def.m_name = name;
    def.m_size = -1;
    def.m_methods = methods;
    return PyModule_Create(&def);
}

// Held while a descriptor of the archive is opened or closed and its slot
// set (ArchiveFile.swift), and across fork: a child sees each descriptor in
// its slot, or not at all (ReadAhead.swift's ForkedChild).
static pthread_mutex_t fork_guard = PTHREAD_MUTEX_INITIALIZER;
void cs_fork_guard_lock(void) { pthread_mutex_lock(&fork_guard); }
void cs_fork_guard_unlock(void) { pthread_mutex_unlock(&fork_guard); }
int cs_at_fork(void (*child)(void)) { return pthread_atfork(cs_fork_guard_lock, cs_fork_guard_unlock, child); }

// A new thread is queued on its creator's CPU, and another CPU takes it only
// when the scheduler balances its queues: 1-4 ms here while the interpreter
// keeps its own CPU busy importing, the time of ten or more imports. So the
// thread starts with an affinity that leaves out the caller's CPU, which
// puts it on an idle one at once (0.1 ms here), and its first act is to take
// back the affinity its creator had: it is placed, not pinned.
struct placed_start {
    void *(*body)(void *);
    void *argument;
    cpu_set_t allowed;
};

static void *start_placed(void *start) {
    struct placed_start placed = *(struct placed_start *)start;
    free(start);
    sched_setaffinity(0, sizeof placed.allowed, &placed.allowed);
    return placed.body(placed.argument);
}

int cs_thread_start(pthread_t *thread, void *(*body)(void *), void *argument) {
    pthread_attr_t attributes;
    if (pthread_attr_init(&attributes) != 0) return -1;
    pthread_attr_setstacksize(&attributes, 512 * 1024);
    struct placed_start *placed = malloc(sizeof *placed);
    int here = sched_getcpu();
    if (placed != NULL && here >= 0 && sched_getaffinity(0, sizeof placed->allowed, &placed->allowed) == 0) {
        cpu_set_t elsewhere = placed->allowed;
        CPU_CLR(here, &elsewhere);
        if (CPU_COUNT(&elsewhere) > 0 && pthread_attr_setaffinity_np(&attributes, sizeof elsewhere, &elsewhere) == 0) {
            placed->body = body;
            placed->argument = argument;
            body = start_placed;
            argument = placed;
            placed = NULL;
        }
    }
    free(placed);
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int error = pthread_create(thread, &attributes, body, argument);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attributes);
    if (error != 0 && body == start_placed) free(argument);
    return error;
}
