/* A C extension module for the --native integration test, built once per
 * installed CPython (meson.build here). Python calls call(f, *args), a C
 * function, which calls f(*args) back: the profiled stack then runs
 * Python -> C -> Python, and the test checks that order frame by frame.
 * PFNATIVE_NAME is the module name (pfnative_311 ...), so that one build
 * directory holds a module per version. */
#include <Python.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(a) #a
#define STR(a) STR_(a)

/* Exported (it shows in .dynsym as well as .symtab) and never inlined. The
 * work after the call keeps the compiler from turning it into a tail call,
 * which would take this frame off the stack. */
PyObject *pfnative_call(PyObject *self, PyObject *args);

__attribute__((noinline, visibility("default"))) PyObject *pfnative_call(PyObject *self,
                                                                       PyObject *args)
{
    PyObject *f, *rest, *result;
    Py_ssize_t n = PyTuple_Size(args);

    (void)self;
    if (n < 1) {
        PyErr_SetString(PyExc_TypeError, "call(f, *args) needs a function");
        return NULL;
    }
    f = PyTuple_GetItem(args, 0);
    rest = PyTuple_GetSlice(args, 1, n);
    if (!rest)
        return NULL;
    result = PyObject_CallObject(f, rest);
    Py_DECREF(rest);
    return result;
}

static PyMethodDef methods[] = {
    {"call", pfnative_call, METH_VARARGS, "call(f, *args): f(*args), called from C."},
    {NULL, NULL, 0, NULL},
};

#if PY_MAJOR_VERSION >= 3
static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, STR(PFNATIVE_NAME), NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC CAT(PyInit_, PFNATIVE_NAME)(void);
PyMODINIT_FUNC CAT(PyInit_, PFNATIVE_NAME)(void)
{
    return PyModule_Create(&module);
}
#else
PyMODINIT_FUNC CAT(init, PFNATIVE_NAME)(void);
PyMODINIT_FUNC CAT(init, PFNATIVE_NAME)(void)
{
    Py_InitModule(STR(PFNATIVE_NAME), methods);
}
#endif
