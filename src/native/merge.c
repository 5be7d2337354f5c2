#include "pyflame/native/merge.h"

#include <stdlib.h>
#include <string.h>

/* The interpreter's call plumbing: functions that only carry a call from
 * one piece of Python (or from C) to the evaluation loop, or from the loop
 * to a C function. They say nothing the Python frames around them do not,
 * so they are dropped. Collected from the native stacks of the interpreters
 * this was tested on (2.7, 3.6-3.13: Python/ceval.c, Objects/call.c,
 * Objects/methodobject.c, Objects/descrobject.c, Objects/funcobject.c,
 * Objects/classobject.c, Objects/typeobject.c and their inline helpers in
 * Include/internal/pycore_call.h). Anything not listed is shown: a missing
 * entry costs a visible extra frame, a wrong one would hide real work, so
 * the list names only functions whose whole job is the call itself. Sorted
 * for bsearch. */
static const char *const PLUMBING[] = {
    "PyCFunction_Call",
    "PyEval_CallFunction",
    "PyEval_CallMethod",
    "PyEval_CallObjectWithKeywords",
    "PyEval_EvalCode",
    "PyEval_EvalCodeEx",
    "PyEval_EvalFrame",
    "PyEval_EvalFrameEx", /* 3.x: a wrapper around the eval function; 2.7: the eval function */
    "PyObject_Call",
    "PyObject_CallFunction",
    "PyObject_CallFunctionObjArgs",
    "PyObject_CallMethod",
    "PyObject_CallMethodObjArgs",
    "PyObject_CallNoArgs",
    "PyObject_CallObject",
    "PyObject_CallOneArg",
    "PyObject_Vectorcall",
    "PyObject_VectorcallDict",
    "PyObject_VectorcallMethod",
    "PyVectorcall_Call",
    "_PyCFunction_FastCallDict",
    "_PyCFunction_FastCallKeywords",
    "_PyEval_EvalCode",
    "_PyEval_EvalCodeWithName",
    "_PyEval_EvalFrame",
    "_PyEval_Vector",
    "_PyFunction_FastCall",
    "_PyFunction_FastCallDict",
    "_PyFunction_FastCallKeywords",
    "_PyFunction_Vectorcall",
    "_PyMethodDef_RawFastCallDict",
    "_PyMethodDef_RawFastCallKeywords",
    "_PyMethodDescr_FastCallKeywords",
    "_PyObject_Call",
    "_PyObject_CallFunctionVa",
    "_PyObject_CallMethodIdObjArgs",
    "_PyObject_CallNoArg",
    "_PyObject_Call_Prepend",
    "_PyObject_FastCall",
    "_PyObject_FastCallDict",
    "_PyObject_FastCallDictTstate",
    "_PyObject_FastCallKeywords",
    "_PyObject_MakeTpCall",
    "_PyObject_Vectorcall",
    "_PyObject_VectorcallTstate",
    "_PyVectorcall_Call",
    "call_function",
    "call_unbound",
    "call_unbound_noarg",
    "cfunction_call",
    "cfunction_call_varargs",
    "do_call_core",
    "ext_do_call",
    "fast_function",
    "function_call",
    "function_code_fastcall",
    "instancemethod_call",
    "method_call",
    "method_vectorcall",
    "methoddescr_call",
    "object_vacall",
    "slot_tp_call",
    "vectorcall_method",
    "vectorcall_unbound",
    "wrapper_call",
    "wrapperdescr_call",
};

/* Families of generated or numbered variants (cfunction_vectorcall_O,
 * method_vectorcall_FASTCALL_KEYWORDS, ...). */
static const char *const PLUMBING_PREFIX[] = {
    "cfunction_vectorcall_",
    "method_vectorcall_",
};

static int cmp_name(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

enum pf_native_kind pf_merge_classify(const char *symbol, bool in_interpreter,
                                      const char *eval_symbol)
{
    char name[128];
    size_t len;

    if (!in_interpreter || !symbol)
        return PF_NATIVE_SHOW;
    /* "f.cold", "f.isra.0", "f@@GLIBC_2.17": the function is f. C names
     * have neither '.' nor '@'. */
    len = strcspn(symbol, ".@");
    if (len == 0 || len >= sizeof(name))
        return PF_NATIVE_SHOW;
    memcpy(name, symbol, len);
    name[len] = '\0';

    /* The layout names the loop (pf_layout_caps.eval_symbol): 2.7's is
     * PyEval_EvalFrameEx, which from 3.6 is plumbing that reaches
     * _PyEval_EvalFrameDefault through interp->eval_frame (PEP 523); the
     * loop is looked for first, so the same name can be both. */
    if (eval_symbol && strcmp(name, eval_symbol) == 0)
        return PF_NATIVE_EVAL;
    if (bsearch(name, PLUMBING, sizeof(PLUMBING) / sizeof(PLUMBING[0]), sizeof(PLUMBING[0]),
                cmp_name))
        return PF_NATIVE_HIDE;
    for (size_t i = 0; i < sizeof(PLUMBING_PREFIX) / sizeof(PLUMBING_PREFIX[0]); i++)
        if (strncmp(name, PLUMBING_PREFIX[i], strlen(PLUMBING_PREFIX[i])) == 0)
            return PF_NATIVE_HIDE;
    return PF_NATIVE_SHOW;
}

static size_t python_only(const uint32_t *py, size_t np, uint32_t mark, uint32_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < np; i++)
        if (py[i] != PF_MERGE_RUN_END)
            out[k++] = py[i];
    out[k++] = mark; /* outermost: the root of the stack */
    return k;
}

enum pf_merge_result pf_merge(const struct pf_native_item *native, size_t nn, bool native_whole,
                              const uint32_t *py, size_t np, bool py_whole,
                              const struct pf_merge_marks *marks, uint32_t *out, size_t *n)
{
    size_t evals = 0, runs = 0, k = 0, p = 0;

    if (!native_whole || !py_whole) {
        *n = python_only(py, np, marks->incomplete, out);
        return PF_MERGE_INCOMPLETE;
    }
    for (size_t i = 0; i < nn; i++)
        evals += native[i].kind == PF_NATIVE_EVAL;
    for (size_t i = 0; i < np; i++)
        runs += py[i] == PF_MERGE_RUN_END;
    /* Every Python frame must belong to a run: frames after the last end
     * would have no evaluation frame to stand in for. */
    if (evals != runs || (np > 0 && py[np - 1] != PF_MERGE_RUN_END)) {
        *n = python_only(py, np, marks->mismatch, out);
        return PF_MERGE_MISMATCH;
    }
    for (size_t i = 0; i < nn; i++) {
        switch (native[i].kind) {
        case PF_NATIVE_EVAL:
            while (py[p] != PF_MERGE_RUN_END)
                out[k++] = py[p++];
            p++; /* the run's end */
            break;
        case PF_NATIVE_HIDE:
            break;
        default:
            out[k++] = native[i].frame;
            break;
        }
    }
    *n = k;
    return PF_MERGE_OK;
}
