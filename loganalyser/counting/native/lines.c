/* Newline offsets of a byte buffer.
 *
 * newline_offsets(buffer) -> bytearray of little-endian int64: the offset of
 * every "\n", ascending (numpy's flatnonzero(v == 10), in one pass and without
 * a temporary of the buffer's size). With SSE2, 64 bytes at a time: their
 * newlines as the bits of a word, of which the first four are written without
 * a branch (a block of short lines costs about what one of long lines does; a
 * newline found a call at a time costs a mispredicted branch each); else, and
 * for the last bytes, memchr.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "words.h"
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>
#define BLOCKS 1
#endif


#ifdef BLOCKS
/* Bit k: whether p[k] is a newline, for the 64 bytes at p. */
static inline uint64_t newline_mask(const unsigned char *p) {
    const __m128i newline = _mm_set1_epi8('\n');
#define NEWLINES16(k) \
    ((uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * k)), newline)) << (16 * k))
    return NEWLINES16(0) | NEWLINES16(1) | NEWLINES16(2) | NEWLINES16(3);
#undef NEWLINES16
}

/* Writes the offsets (base + bit) of the bits of m at `at`; returns how many. Four are
 * written whether there are or not (`at` has room for 64): the branch is on more than four. */
static inline Py_ssize_t bit_offsets(uint64_t m, Py_ssize_t base, int64_t *at) {
    const uint64_t last = UINT64_C(1) << 63; /* past the last bit: a value overwritten later */
    Py_ssize_t count = m != 0;
    at[0] = base + __builtin_ctzll(m | last);
    m &= m - 1;
    count += m != 0;
    at[1] = base + __builtin_ctzll(m | last);
    m &= m - 1;
    count += m != 0;
    at[2] = base + __builtin_ctzll(m | last);
    m &= m - 1;
    count += m != 0;
    at[3] = base + __builtin_ctzll(m | last);
    m &= m - 1;
    for (; m; m &= m - 1) at[count++] = base + __builtin_ctzll(m);
    return count;
}
#endif

static int grow(PyObject *out, int64_t **at, Py_ssize_t *capacity) {
    *capacity *= 2;
    if (PyByteArray_Resize(out, *capacity * 8) < 0) return -1;
    *at = (int64_t *)PyByteArray_AS_STRING(out);
    return 0;
}

static PyObject *newline_offsets(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    const unsigned char *p = view.buf;
    Py_ssize_t n = view.len, capacity = n / 32 + 64, k = 0, i = 0;
    PyObject *out = PyByteArray_FromStringAndSize(NULL, capacity * 8);
    if (out == NULL) goto fail;
    int64_t *at = (int64_t *)PyByteArray_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
#ifdef BLOCKS
    for (; i + 64 <= n; i += 64) {
        while (k + 64 > capacity) {
            Py_BLOCK_THREADS
            if (grow(out, &at, &capacity) < 0) goto fail;
            Py_UNBLOCK_THREADS
        }
        uint64_t m = newline_mask(p + i);
        if (m) k += bit_offsets(m, i, at + k); /* a block of long lines' has none */
    }
#endif
    const unsigned char *q;
    while (i < n && (q = memchr(p + i, '\n', n - i)) != NULL) {
        if (k == capacity) {
            Py_BLOCK_THREADS
            if (grow(out, &at, &capacity) < 0) goto fail;
            Py_UNBLOCK_THREADS
        }
        at[k++] = q - p;
        i = q - p + 1;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (PyByteArray_Resize(out, k * 8) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
fail:
    PyBuffer_Release(&view);
    Py_XDECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"newline_offsets", newline_offsets, METH_VARARGS, "offsets of the newlines of a buffer, as int64 bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lines", NULL, -1, methods};

PyMODINIT_FUNC PyInit__lines(void) { return PyModule_Create(&module); }
