/* The field steps of a program (formats/field_steps.py) run over the lines still read, and
 * the count of their level keys.
 *
 * run_steps(buffer, ops, tables, cursors, ok, keys[, ended]) runs the steps `ops`
 * (int64 rows of OP_WIDTH: what native_steps.py makes of field steps) from each
 * line's cursor (int64, at least 0), a row at a time over the lines whose `ok` is
 * set: it moves the cursor, clears `ok` where a step fails (later rows skip that
 * line), writes the level's key (uint64) and, given `ended` (bool), sets it where a
 * step that needs a byte meets CR or LF, as the numpy steps do. `tables` holds
 * 256-byte tables, one per byte class, that the rows name by index. A byte is read
 * at min(offset, len - 1), as the numpy steps read it, so no cursor reads outside
 * the buffer.
 *
 *   BYTES table, count, ranges
 *                            the `count` bytes (at most 128) at the cursor are each in their
 *                            own table (tables table..table + count - 1); move past them.
 *                            `ranges`: -1, or a table holding those tables as byte ranges
 *                            (bytes_in)
 *   PEEK  table              the byte at the cursor is in the table
 *   RUN   stops, least, most, cap, form, then
 *                            bytes up to the first in `stops` (the buffer's end is one):
 *                            at least `least`, at most `most` (-1: any), fewer than `cap`;
 *                            `form`: the same stops as a range and three bytes (run_length);
 *                            `then`: -1, or the table of one byte after the run (a BYTES of one)
 *   LEVEL class, least, most, eight, suffix
 *                            the run of the class is the level, least to most bytes
 *                            (at most 7, or 8 where `eight` and no ninth goes on), then
 *                            one byte of the `suffix` table (-1: none); its key is its
 *                            bytes, little-endian, tagged with its length below 8
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "words.h" /* its keys are little-endian words */

enum { OP_BYTES, OP_PEEK, OP_RUN, OP_LEVEL, OP_WIDTH = 7 };

typedef struct {
    const unsigned char *v;
    Py_ssize_t n;
} Bytes;

static inline unsigned char at(Bytes b, Py_ssize_t j) { return b.v[j < b.n ? j : b.n - 1]; }

static inline bool line_end(unsigned char c) { return c == '\n' || c == '\r'; }

/* The 0/1 table entries of the bytes v[j..j+7], bit k for byte j + k. */
static inline unsigned flags8(const unsigned char *v, const unsigned char *table, Py_ssize_t j) {
    return table[v[j]] | table[v[j + 1]] << 1 | table[v[j + 2]] << 2 | table[v[j + 3]] << 3 | table[v[j + 4]] << 4 |
           table[v[j + 5]] << 5 | table[v[j + 6]] << 6 | (unsigned)table[v[j + 7]] << 7;
}

/* A run's stops as a range and up to three bytes (the RUN row's `form`, see run_length). */
typedef struct {
#if defined(__SSE2__)
    __m128i lo, hi, e1, e2, e3;
#endif
    bool ranged, top, listed; /* a form; hi is 0xFF; bytes in the range are stops */
} Form;

static Form form_of(int64_t form) {
    Form f = {.ranged = form != 0, .top = (form >> 8 & 0xFF) == 0xFF, .listed = (form >> 44 & 3) != 0};
#if defined(__SSE2__)
    f.lo = _mm_set1_epi8((char)(form & 0xFF));
    f.hi = _mm_set1_epi8((char)(form >> 8 & 0xFF));
    f.e1 = _mm_set1_epi8((char)(form >> 16 & 0xFF));
    f.e2 = _mm_set1_epi8((char)(form >> 24 & 0xFF));
    f.e3 = _mm_set1_epi8((char)(form >> 32 & 0xFF));
#endif
    return f;
}

/* Bytes from p before the first stop, at most `limit` (p < n). With SSE2, sixteen bytes
 * at a time where the stops are the bytes out of [lo, hi] and up to three in it (`form`:
 * lo | hi << 8 | the three << 16, 24, 32 | 1 << 40 | how many are listed << 44; 0 for
 * other tables); else, and at the end, eight table reads at a time, whose stops are found
 * at once. The form's tests that it needs not (no high end, no bytes listed) are skipped. */
static inline Py_ssize_t run_length(Bytes b, const unsigned char *stops, const Form *f, Py_ssize_t p, Py_ssize_t limit) {
    Py_ssize_t end = b.n - p < limit ? b.n : p + limit, j = p;
#if defined(__SSE2__)
    if (f->ranged) {
        for (; j + 16 <= end; j += 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(b.v + j));
            __m128i in = _mm_cmpeq_epi8(_mm_max_epu8(x, f->lo), x);
            if (!f->top) in = _mm_and_si128(in, _mm_cmpeq_epi8(_mm_min_epu8(x, f->hi), x));
            __m128i stop = _mm_cmpeq_epi8(in, _mm_setzero_si128());
            if (f->listed)
                stop = _mm_or_si128(stop, _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, f->e1), _mm_cmpeq_epi8(x, f->e2)),
                                                       _mm_cmpeq_epi8(x, f->e3)));
            unsigned m = (unsigned)_mm_movemask_epi8(stop);
            if (m) return j + lowest_bit(m) - p;
        }
    }
#else
    (void)f;
#endif
    for (; j + 8 <= end; j += 8) {
        unsigned m = flags8(b.v, stops, j);
        if (m) return j + lowest_bit(m) - p;
    }
    while (j < end && !stops[b.v[j]]) j++;
    return j - p;
}

/* Whether bytes p.. are each in their own table (`count` tables, 256 bytes apart). With
 * SSE2, where `ranges` (or NULL) gives each byte's table as a range: its lows at 0, its
 * highs at 128, sixteen at a time (past `count`: 0 and 255). */
static inline bool bytes_in(Bytes b, const unsigned char *tables, const unsigned char *ranges, Py_ssize_t p,
                            Py_ssize_t count) {
#if defined(__SSE2__)
    Py_ssize_t blocks = (count + 15) / 16;
    if (ranges != NULL && p + 16 * blocks <= b.n) {
        if (blocks == 1) { /* most: one compare */
            __m128i x = _mm_loadu_si128((const __m128i *)(b.v + p));
            __m128i lo = _mm_loadu_si128((const __m128i *)ranges), hi = _mm_loadu_si128((const __m128i *)(ranges + 128));
            __m128i in = _mm_and_si128(_mm_cmpeq_epi8(_mm_max_epu8(x, lo), x), _mm_cmpeq_epi8(_mm_min_epu8(x, hi), x));
            return _mm_movemask_epi8(in) == 0xFFFF;
        }
        unsigned all = 0xFFFF;
        for (Py_ssize_t k = 0; k < blocks; k++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(b.v + p + 16 * k));
            __m128i lo = _mm_loadu_si128((const __m128i *)(ranges + 16 * k));
            __m128i hi = _mm_loadu_si128((const __m128i *)(ranges + 128 + 16 * k));
            __m128i in = _mm_and_si128(_mm_cmpeq_epi8(_mm_max_epu8(x, lo), x), _mm_cmpeq_epi8(_mm_min_epu8(x, hi), x));
            all &= (unsigned)_mm_movemask_epi8(in);
        }
        return all == 0xFFFF;
    }
#else
    (void)ranges;
#endif
    unsigned all = 1;
    if (p + count <= b.n)
        for (Py_ssize_t i = 0; i < count; i++) all &= tables[256 * i + b.v[p + i]];
    else
        for (Py_ssize_t i = 0; i < count; i++) all &= tables[256 * i + at(b, p + i)];
    return all;
}

/* The level at p: its length (a run of the class, then a suffix byte), whether it fits, and its key. */
static inline bool level_at(Bytes b, const int64_t *op, const unsigned char *tables, Py_ssize_t p, Py_ssize_t *size,
                            uint64_t *key) {
    const unsigned char *table = tables + 256 * op[1];
    unsigned in = p + 9 <= b.n ? flags8(b.v, table, p) | (unsigned)table[b.v[p + 8]] << 8 : 0;
    for (int i = 0; p + 9 > b.n && i < 9; i++) in |= (unsigned)table[at(b, p + i)] << i;
    Py_ssize_t length = lowest_bit(~in); /* the run, up to 9 */
    bool ok = length >= op[2] && (op[4] ? length <= 8 : length <= (op[3] < 7 ? op[3] : 7));
    if (length > 8) length = 8;
    if (op[5] >= 0 && tables[256 * op[5] + at(b, p + length)]) {
        length += 1;
        ok = ok && length <= 8;
        if (length > 8) length = 8;
    }
    uint64_t k = 0;
    if (p + 8 <= b.n)
        memcpy(&k, b.v + p, 8);
    else
        for (Py_ssize_t i = 0; i < length; i++) k |= (uint64_t)at(b, p + i) << (8 * i);
    *key = length < 8 ? (k & ((UINT64_C(1) << (8 * length)) - 1)) | (uint64_t)length << 56 : k;
    *size = length;
    return ok;
}

/* One row over every line still read (a row at a time: each loop's branches are one step's;
 * the row's numbers are read once, into locals the writes to the lines cannot change). */
static void run_row(Bytes b, const int64_t *op, const unsigned char *tables, Py_ssize_t lines, int64_t *restrict p,
                    bool *restrict good, uint64_t *restrict key, bool *restrict ended) {
    const unsigned char *table = tables + 256 * op[1];
    const Py_ssize_t count = op[2], least = op[2], most = op[3] < 0 ? PY_SSIZE_T_MAX : op[3], cap = op[4];
    const bool needs_a_byte = least > 0 && ended != NULL; /* RUN and LEVEL: mark CR or LF where a byte is needed */
    switch (op[0]) {
    case OP_BYTES: {
        const unsigned char *ranges = op[3] >= 0 ? tables + 256 * op[3] : NULL;
        for (Py_ssize_t i = 0; i < lines; i++)
            if (good[i]) {
                good[i] = bytes_in(b, table, ranges, p[i], count);
                p[i] += count;
            }
        break;
    }
    case OP_PEEK:
        for (Py_ssize_t i = 0; i < lines; i++)
            if (good[i]) good[i] = table[at(b, p[i])];
        break;
    case OP_RUN: {
        const Form f = form_of(op[5]);
        const unsigned char *then = op[6] >= 0 ? tables + 256 * op[6] : NULL;
        for (Py_ssize_t i = 0; i < lines; i++)
            if (good[i]) {
                Py_ssize_t from = p[i] < b.n ? p[i] : b.n - 1;
                if (needs_a_byte && line_end(b.v[from])) ended[i] = true;
                Py_ssize_t length = run_length(b, table, &f, from, cap);
                good[i] = (length < cap) & (length >= least) & (length <= most);
                p[i] += length;
                if (then != NULL) good[i] &= then[at(b, p[i]++)];
            }
        break;
    }
    case OP_LEVEL:
        for (Py_ssize_t i = 0; i < lines; i++)
            if (good[i]) {
                Py_ssize_t length;
                if (needs_a_byte && line_end(at(b, p[i]))) ended[i] = true;
                good[i] = level_at(b, op, tables, p[i], &length, key + i);
                p[i] += length;
            }
        break;
    }
}

static PyObject *run_steps(PyObject *self, PyObject *args) {
    Py_buffer v, ops, tables, cursors, ok, keys, ended = {.buf = NULL};
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*w*|w*", &v, &ops, &tables, &cursors, &ok, &keys, &ended)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t lines = cursors.len / 8, rows = ops.len / (8 * OP_WIDTH), classes = tables.len / 256;
    bool sizes = v.len > 0 && ops.len % (8 * OP_WIDTH) == 0 && tables.len % 256 == 0 && cursors.len % 8 == 0 &&
                 ok.len == lines && keys.len == cursors.len && (ended.buf == NULL || ended.len == lines);
    for (Py_ssize_t i = 0; sizes && i < lines; i++) sizes = ((const int64_t *)cursors.buf)[i] >= 0;
    for (Py_ssize_t r = 0; sizes && r < rows; r++) {
        const int64_t *op = (const int64_t *)ops.buf + r * OP_WIDTH;
        sizes = op[0] >= OP_BYTES && op[0] <= OP_LEVEL && op[1] >= 0 && op[1] < classes &&
                (op[0] != OP_BYTES || (op[2] >= 0 && op[2] <= 128 && op[1] + op[2] <= classes && op[3] < classes)) && (op[0] != OP_LEVEL || op[5] < classes) &&
                (op[0] != OP_RUN || op[6] < classes);
    }
    if (!sizes) {
        PyErr_SetString(PyExc_ValueError, "run_steps: rows of ops naming the tables given, and a cursor (>= 0), ok and key per line");
        goto done;
    }
    Bytes b = {v.buf, v.len};
    int64_t *p = cursors.buf;
    bool *good = ok.buf, *end = ended.buf;
    uint64_t *key = keys.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) run_row(b, (const int64_t *)ops.buf + r * OP_WIDTH, tables.buf, lines, p, good, key, end);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&v);
    PyBuffer_Release(&ops);
    PyBuffer_Release(&tables);
    PyBuffer_Release(&cursors);
    PyBuffer_Release(&ok);
    PyBuffer_Release(&keys);
    if (ended.buf != NULL) PyBuffer_Release(&ended);
    return result;
}

/* count_keys(keys, sure, slot_keys, slot_counts) -> bool: counts the keys (uint64) of the
 * lines that are sure (bool) into a hash table of 2^k slots that the caller zeroed (a slot
 * is used where its count is not 0); False, with the table half made, where more than
 * half its slots would be used. */
static PyObject *count_keys(PyObject *self, PyObject *args) {
    Py_buffer keys, sure, slot_keys, slot_counts;
    if (!PyArg_ParseTuple(args, "y*y*w*w*", &keys, &sure, &slot_keys, &slot_counts)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t lines = keys.len / 8, slots = slot_keys.len / 8;
    if (keys.len % 8 || sure.len != lines || slots < 2 || (slots & (slots - 1)) || slot_counts.len != slot_keys.len) {
        PyErr_SetString(PyExc_ValueError, "count_keys: a key and a sure flag per line, and two tables of 2^k slots");
        goto done;
    }
    const uint64_t *key = keys.buf;
    const bool *good = sure.buf;
    uint64_t *slot_key = slot_keys.buf, mask = (uint64_t)slots - 1;
    int64_t *slot_count = slot_counts.buf;
    int shift = 64;
    for (Py_ssize_t s = slots; s > 1; s >>= 1) shift--;
    Py_ssize_t used = 0;
    bool fits = true;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < lines && fits; i++) {
        if (!good[i]) continue;
        uint64_t at = (key[i] * UINT64_C(0x9E3779B97F4A7C15)) >> shift;
        while (slot_count[at] && slot_key[at] != key[i]) at = (at + 1) & mask;
        if (!slot_count[at]) {
            slot_key[at] = key[i];
            fits = ++used <= slots / 2;
        }
        slot_count[at]++;
    }
    Py_END_ALLOW_THREADS
    result = PyBool_FromLong(fits);
done:
    PyBuffer_Release(&keys);
    PyBuffer_Release(&sure);
    PyBuffer_Release(&slot_keys);
    PyBuffer_Release(&slot_counts);
    return result;
}

static PyMethodDef methods[] = {
    {"run_steps", run_steps, METH_VARARGS, "runs field steps from each line's cursor (see steps.c)"},
    {"count_keys", count_keys, METH_VARARGS, "counts the keys of the sure lines in a hash table (see steps.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_steps", NULL, -1, methods};

PyMODINIT_FUNC PyInit__steps(void) { return PyModule_Create(&module); }
