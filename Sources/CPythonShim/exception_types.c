// The module's exception classes, as static types. PyErr_NewException
// builds a heap type, and type() fills in every slot of a heap type by
// name through its MRO (~0.2 M instructions a class); PyType_Ready copies
// a static type's slots from its base: 0.155 M fewer instructions for
// both, at every served start.
// They are named for codeshare.archive, the module that exports them, so
// that pickle finds them (a refusal sent back from a multiprocessing worker).
#include "CPythonShim.h"

PyTypeObject cs_archive_error = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "codeshare.archive.ArchiveError",
    .tp_basicsize = sizeof(PyBaseExceptionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "An archive codeshare cannot use: damaged, stale, missing or of another format.",
};

static PyTypeObject foreign_archive_error = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "codeshare.archive.ForeignArchiveError",
    .tp_basicsize = sizeof(PyBaseExceptionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A sound archive written by another interpreter build, -O level or -X no_debug_ranges setting.",
    .tp_base = &cs_archive_error,
};

int cs_exception_types_ready(PyObject **archive, PyObject **foreign) {
    // Not a constant: PyExc_Exception is a variable of the interpreter's.
    cs_archive_error.tp_base = (PyTypeObject *)PyExc_Exception;
    if (PyType_Ready(&cs_archive_error) < 0 || PyType_Ready(&foreign_archive_error) < 0) return -1;
    *archive = (PyObject *)&cs_archive_error;
    *foreign = (PyObject *)&foreign_archive_error;
    return 0;
}
