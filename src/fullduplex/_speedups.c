/* fullduplex._speedups: a compiled apply_mask (RFC 6455 §5.3).
 *
 * The contract is the one of _apply_mask_python in protocol/_mask.py:
 *
 *     apply_mask(data, mask) -> bytes
 *
 * returns `data` XORed with the repeating 4-byte `mask`. `data` is any bytes-like object
 * (bytes, bytearray, memoryview, also non-contiguous); `mask` is a bytes-like object of
 * exactly 4 bytes. Masking and unmasking are the same operation.
 *
 * The loop XORs 8 bytes at a time with a 64-bit word holding the mask twice. Words are
 * moved with memcpy, which compilers turn into plain (unaligned) loads and stores, so any
 * alignment of `data` is fine; the last 0-7 bytes are done one at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

static void
xor_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t length,
         const unsigned char mask[4])
{
    unsigned char mask_bytes[8];
    uint64_t mask_word;
    Py_ssize_t i = 0;

    /* In memory order the word is mask[0..3] mask[0..3], so it lines up with the payload
       at every offset that is a multiple of 8, whatever the machine's byte order. */
    memcpy(mask_bytes, mask, 4);
    memcpy(mask_bytes + 4, mask, 4);
    memcpy(&mask_word, mask_bytes, 8);

    for (; i + 32 <= length; i += 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, src + i, 8);
        memcpy(&w1, src + i + 8, 8);
        memcpy(&w2, src + i + 16, 8);
        memcpy(&w3, src + i + 24, 8);
        w0 ^= mask_word;
        w1 ^= mask_word;
        w2 ^= mask_word;
        w3 ^= mask_word;
        memcpy(dst + i, &w0, 8);
        memcpy(dst + i + 8, &w1, 8);
        memcpy(dst + i + 16, &w2, 8);
        memcpy(dst + i + 24, &w3, 8);
    }
    for (; i + 8 <= length; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= mask_word;
        memcpy(dst + i, &w, 8);
    }
    for (; i < length; i++) {
        dst[i] = src[i] ^ mask[i & 3];
    }
}

/* Fill `view` with a contiguous buffer of `obj`. A non-contiguous object (a strided
   memoryview) is copied to bytes first; `*copy` then holds that copy, else NULL. */
static int
get_contiguous_buffer(PyObject *obj, Py_buffer *view, PyObject **copy)
{
    *copy = NULL;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_BufferError) || !PyObject_CheckBuffer(obj)) {
        return -1;
    }
    PyErr_Clear();
    *copy = PyBytes_FromObject(obj);
    if (*copy == NULL) {
        return -1;
    }
    if (PyObject_GetBuffer(*copy, view, PyBUF_SIMPLE) != 0) {
        Py_CLEAR(*copy);
        return -1;
    }
    return 0;
}

/* Positional or keyword arguments `data` and `mask`, parsed by hand: vectorcall keeps the
   per-frame call overhead low, and this function runs once for every masked frame. */
static int
parse_arguments(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                PyObject **data, PyObject **mask)
{
    static const char *const names[2] = {"data", "mask"};
    PyObject *values[2] = {NULL, NULL};
    Py_ssize_t i, nkwargs = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);

    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "apply_mask() takes 2 positional arguments but %zd were given", nargs);
        return -1;
    }
    for (i = 0; i < nargs; i++) {
        values[i] = args[i];
    }
    for (i = 0; i < nkwargs; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        int index;
        if (PyUnicode_CompareWithASCIIString(name, "data") == 0) {
            index = 0;
        }
        else if (PyUnicode_CompareWithASCIIString(name, "mask") == 0) {
            index = 1;
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "apply_mask() got an unexpected keyword argument '%U'", name);
            return -1;
        }
        if (values[index] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "apply_mask() got multiple values for argument '%s'", names[index]);
            return -1;
        }
        values[index] = args[nargs + i];
    }
    for (i = 0; i < 2; i++) {
        if (values[i] == NULL) {
            PyErr_Format(PyExc_TypeError,
                         "apply_mask() missing required argument '%s'", names[i]);
            return -1;
        }
    }
    *data = values[0];
    *mask = values[1];
    return 0;
}

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *data_obj, *mask_obj, *data_copy = NULL, *mask_copy = NULL, *result = NULL;
    Py_buffer data, mask;

    (void)module;
    if (parse_arguments(args, nargs, kwnames, &data_obj, &mask_obj) != 0) {
        return NULL;
    }
    if (get_contiguous_buffer(data_obj, &data, &data_copy) != 0) {
        return NULL;
    }
    if (get_contiguous_buffer(mask_obj, &mask, &mask_copy) != 0) {
        goto release_data;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes long, got %zd", mask.len);
        goto release_mask;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result != NULL) {
        xor_mask((const unsigned char *)data.buf, (unsigned char *)PyBytes_AS_STRING(result),
                 data.len, (const unsigned char *)mask.buf);
    }
release_mask:
    PyBuffer_Release(&mask);
    Py_XDECREF(mask_copy);
release_data:
    PyBuffer_Release(&data);
    Py_XDECREF(data_copy);
    return result;
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask)\n"
"--\n"
"\n"
"Return ``data`` XORed with the repeating 4-byte ``mask`` (RFC 6455 section 5.3).\n"
"\n"
"Args:\n"
"    data: the payload, any bytes-like object.\n"
"    mask: the masking key, a bytes-like object of exactly 4 bytes.\n"
"\n"
"Returns:\n"
"    The masked (or unmasked: it is the same operation) payload as bytes.\n"
"\n"
"Raises:\n"
"    TypeError: an argument is not bytes-like.\n"
"    ValueError: the mask is not 4 bytes long.\n");

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL | METH_KEYWORDS,
     apply_mask_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fullduplex._speedups",
    .m_doc = "Compiled helpers for fullduplex; see fullduplex/protocol/_mask.py.",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
