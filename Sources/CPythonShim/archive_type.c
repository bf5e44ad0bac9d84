// codeshare.archive.Archive, an open archive, as a static type: a class of
// the hook's own Python module cost every served start the import of that
// module and the building of the class (~0.5 M instructions), and each
// served import a Python frame for each call the finder makes (membership,
// metadata, code, release). What the reader does is Swift's (the
// cs_reader_* functions, ArchiveObject.swift); here is the Python protocol:
// arguments, names to indexes, and messages that name the archive.
#include "CPythonShim.h"
#include <structmember.h>

/* Re-raises the ArchiveError set with its text after the archive's path
   (and the module's name): "app.csa: module json: ...". Other errors, such
   as MemoryError, pass unchanged. */
static void name_the_archive(CSArchiveObject *self, PyObject *module) {
    if (!PyErr_ExceptionMatches((PyObject *)&cs_archive_error)) return;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *message = module ? PyUnicode_FromFormat("%U: module %U: %S", self->path, module, value)
                               : PyUnicode_FromFormat("%U: %S", self->path, value);
    if (message != NULL) {
        PyErr_SetObject(type, message);
        Py_DECREF(message);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

/* The index of the module `name`; -1 with KeyError(name) if the archive has none. */
static Py_ssize_t module_index(CSArchiveObject *self, PyObject *name) {
    PyObject *index = PyDict_GetItemWithError(self->index, name);
    if (index == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, name);
        return -1;
    }
    return PyLong_AsSsize_t(index);
}

/* A call's keyword arguments into `values`, by the position of their name in
   `names` (NULL-ended); -1 with a TypeError for any other. */
static int keyword_arguments(const char *usage, PyObject *const *given, PyObject *kwnames,
                             const char *const *names, PyObject **values) {
    Py_ssize_t count = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t position = 0; position < count; position++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, position);
        int name = 0;
        while (names[name] != NULL && PyUnicode_CompareWithASCIIString(key, names[name]) != 0) name++;
        if (names[name] == NULL) {
            PyErr_SetString(PyExc_TypeError, usage);
            return -1;
        }
        values[name] = given[position];
    }
    return 0;
}

static PyObject *archive_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"path", "keep_open", NULL};
    PyObject *given;
    int keep_open = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$p:Archive", keywords, &given, &keep_open)) return NULL;
    PyObject *path = PyOS_FSPath(given);
    if (path == NULL) return NULL;
    if (!PyUnicode_Check(path)) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_TypeError, "Archive() takes a path (str or os.PathLike of str)");
        return NULL;
    }
    CSArchiveObject *self = (CSArchiveObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(path);
        return NULL;
    }
    self->path = path;
    if (cs_reader_open(self, path, keep_open) < 0) {
        name_the_archive(self, NULL);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void archive_dealloc(CSArchiveObject *self) {
    if (self->reader != NULL) cs_reader_close(self->reader);
    Py_XDECREF(self->path);
    Py_XDECREF(self->names);
    Py_XDECREF(self->index);
    Py_XDECREF(self->manifest);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *archive_metadata(CSArchiveObject *self, PyObject *name) {
    Py_ssize_t index = module_index(self, name);
    return index < 0 ? NULL : cs_reader_metadata(self->reader, index);
}

static PyObject *archive_code(CSArchiveObject *self, PyObject *name) {
    Py_ssize_t index = module_index(self, name);
    if (index < 0) return NULL;
    PyObject *code = cs_reader_code(self->reader, index);
    if (code == NULL) name_the_archive(self, name);
    return code;
}

static PyObject *archive_release(CSArchiveObject *self, PyObject *const *args, Py_ssize_t count, PyObject *kwnames) {
    static const char *usage = "release() takes a module name, and protect=";
    static const char *const names[] = {"protect", NULL};
    PyObject *values[] = {Py_False};
    if (count != 1) {
        PyErr_SetString(PyExc_TypeError, usage);
        return NULL;
    }
    if (keyword_arguments(usage, args + count, kwnames, names, values) < 0) return NULL;
    Py_ssize_t index = module_index(self, args[0]);
    if (index < 0) return NULL;
    int protect = PyObject_IsTrue(values[0]);
    return protect < 0 ? NULL : cs_reader_release(self->reader, index, protect);
}

static PyObject *archive_read_ahead(CSArchiveObject *self, PyObject *const *args, Py_ssize_t count, PyObject *kwnames) {
    static const char *usage = "read_ahead() takes after= and now= only";
    static const char *const names[] = {"after", "now", NULL};
    PyObject *values[] = {NULL, Py_False};
    if (count != 0) {
        PyErr_SetString(PyExc_TypeError, usage);
        return NULL;
    }
    if (keyword_arguments(usage, args, kwnames, names, values) < 0) return NULL;
    Py_ssize_t after = values[0] == NULL ? 0 : PyLong_AsSsize_t(values[0]);
    if (after == -1 && PyErr_Occurred()) return NULL;
    int now = PyObject_IsTrue(values[1]);
    return now < 0 ? NULL : cs_reader_read_ahead(self->reader, after < 0 ? 0 : after, now);
}

static PyObject *archive_close_file(CSArchiveObject *self, PyObject *unused) {
    cs_reader_close_file(self->reader);
    Py_RETURN_NONE;
}

static PyObject *archive_census(CSArchiveObject *self, PyObject *unused) {
    PyObject *census = cs_reader_census(self->reader, self->names);
    if (census == NULL) name_the_archive(self, NULL);
    return census;
}

static PyObject *archive_enter(CSArchiveObject *self, PyObject *unused) { return Py_NewRef(self); }
static PyObject *archive_exit(CSArchiveObject *self, PyObject *args) { Py_RETURN_NONE; }

static PyObject *archive_header(CSArchiveObject *self, void *closure) { return cs_reader_header(self->reader); }
static PyObject *archive_stats(CSArchiveObject *self, void *closure) { return cs_reader_stats(self->reader); }

static Py_ssize_t archive_length(CSArchiveObject *self) { return PyList_GET_SIZE(self->names); }
static int archive_contains(CSArchiveObject *self, PyObject *name) { return PyDict_Contains(self->index, name); }

static PyMethodDef archive_methods[] = {
    {"metadata", (PyCFunction)archive_metadata, METH_O, "metadata(name): what was recorded with the module"},
    {"code", (PyCFunction)archive_code, METH_O,
     "code(name): the module's top-level code object, materialized on first call; the same object on every call "
     "until release() gives it back"},
    {"release", (PyCFunction)(void (*)(void))archive_release, METH_FASTCALL | METH_KEYWORDS,
     "release(name, *, protect=False): once the module's code has run, gives back the memory of what only the "
     "module and class bodies used and nothing references any more (a program's imports: ~5% of its memory), "
     "64 KiB at a time: a call may give back another module's pages, or leave its own for a later one. "
     "protect: at once, and those pages also fault on any later access (a debugging aid). Returns the bytes "
     "this call gave back."},
    {"read_ahead", (PyCFunction)(void (*)(void))archive_read_ahead, METH_FASTCALL | METH_KEYWORDS,
     "read_ahead(*, after=0, now=False): has every module past the first `after` prepared (read, checked, "
     "relocated) on another thread, in archive order, so that code() mostly finds its module ready and only "
     "fills in the interpreter's own objects. The thread starts now, or else at the first code() of one of "
     "those modules; it keeps at most 16 modules ahead of the imports (of the first of them, until they "
     "start), and ends once the imports have paused for 2 s. Only for an archive of one program's imports "
     "(together) of 2 MiB or more, on a machine with a second core; returns whether the thread will start."},
    {"close_file", (PyCFunction)archive_close_file, METH_NOARGS,
     "close_file(): closes the file Archive(path, keep_open=True) kept open; each code() call then opens it for "
     "its own reads only"},
    {"census", (PyCFunction)archive_census, METH_NOARGS,
     "census(): reads and checks every segment without materializing anything: "
     "({type name: (count, bytes)}, {module: segment bytes}, pool bytes)"},
    {"__enter__", (PyCFunction)archive_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)archive_exit, METH_VARARGS, NULL},
    {NULL},
};

static PyGetSetDef archive_getset[] = {
    {"header", (getter)archive_header, NULL,
     "the header as a dict: schema_version, python_version, created, ...", NULL},
    {"stats", (getter)archive_stats, NULL,
     "what this process has read: modules_loaded, chunks_loaded, bytes_read, bytes_released", NULL},
    {NULL},
};

static PyMemberDef archive_members[] = {
    {"path", T_OBJECT, offsetof(CSArchiveObject, path), READONLY, "the path, as given"},
    {"names", T_OBJECT, offsetof(CSArchiveObject, names), READONLY, "module names, in archive order"},
    {"manifest", T_OBJECT, offsetof(CSArchiveObject, manifest), READONLY,
     "what was recorded with the whole archive"},
    {NULL},
};

static PySequenceMethods archive_sequence = {
    .sq_length = (lenfunc)archive_length,
    .sq_contains = (objobjproc)archive_contains,
};

static PyTypeObject archive_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "codeshare.archive.Archive",
    .tp_basicsize = sizeof(CSArchiveObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Archive(path, *, keep_open=False): an open archive. Opening validates the header and module "
              "index; a module's objects are read, checked and materialized on first code(). The file is open "
              "only while a call reads it, unless keep_open: then it stays open, across code() calls, until "
              "close_file().",
    .tp_new = archive_new,
    .tp_dealloc = (destructor)archive_dealloc,
    .tp_methods = archive_methods,
    .tp_getset = archive_getset,
    .tp_members = archive_members,
    .tp_as_sequence = &archive_sequence,
};

PyObject *cs_archive_type_ready(void) {
    return PyType_Ready(&archive_type) < 0 ? NULL : (PyObject *)&archive_type;
}
