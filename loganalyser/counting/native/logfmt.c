/* What logfmt's lines surely are, one line at a time (the twin of logfmt_bits.py's read_lines).
 *
 * read_lines(buffer, ends, kinds, keys): `buffer` ends with a newline, `ends`
 * (int64) holds the offset of each of its newlines; per line, kinds (uint8)
 * gets UNSETTLED, BLANK, LEVELED, PLAIN or NO_RECORD, and keys (uint64) the
 * level of a leveled line as field_steps.py makes it (its 1-8 bytes, tagged
 * with their number in the top byte; 8 bytes carry none).
 *
 * It settles every line the bitmaps settle, alike, and more: reading bytes
 * one by one, it needs no guard at the buffer's end, no 64-byte windows, and
 * it follows escapes in quoted values (no-record lines keep the guard, for
 * their counting). A line is valid when it is a sequence
 * of KEY=VALUE tokens split by spaces (trailing spaces allowed), KEY a letter
 * then [A-Za-z0-9_.:/-], VALUE either quoted -- '"', bytes but '"', '\\' and
 * control bytes, or a '\\' and a byte that is no control byte, then '"' before
 * a space or the line's end -- or bare, without space, quote or control byte;
 * no control byte but the one CR before the newline (the rule strips it).
 * The spec's regex reads each such token as this one way first (its quoted
 * alternative is tried first and ends at the first unescaped quote; a bare
 * value runs to the next space), so:
 *
 * - a valid line whose first token is `level=WORD` or `lvl=WORD` (WORD: 1-8
 *   bytes of [A-Za-z0-9_], then a space or the line's end) has level WORD:
 *   the regex's level token at the line's start, then these pairs, matches;
 * - so does one whose first token does not start with `level=` or `lvl=` and
 *   whose second token is such a one: the regex needs its level token at the
 *   start, else after a first pair, which it reads as this first token first;
 * - a valid line with no `level=`/`lvl=` first or after a space is a record
 *   without level (NONE): the regex's level token can be nowhere else;
 * - a line whose first byte starts no key, or whose first key ends at neither
 *   "=" nor "@", is surely no record (the shared continuation rule decides).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "words.h"

enum { UNSETTLED, BLANK, LEVELED, PLAIN, NO_RECORD };

enum {
    LETTER = 1,   /* [A-Za-z]: a key's first byte */
    KEY = 2,      /* [A-Za-z0-9_.:/-]: a key's bytes */
    WORD = 4,     /* [A-Za-z0-9_]: a level's bytes */
    BARE = 8,     /* a bare value's bytes: no space, quote or control byte */
    QUOTED = 16,  /* a quoted value's bytes but escapes: no quote, backslash or control byte */
};

/* No-record lines are counted by vectorised.py, which reads two words at their start. */
#define NO_RECORD_GUARD 16

static uint8_t classes[256];

static void fill_classes(void) {
    for (int c = 0; c < 256; c++) {
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        int digit = c >= '0' && c <= '9';
        uint8_t k = 0;
        if (letter) k |= LETTER;
        if (letter || digit || c == '_' || c == '.' || c == ':' || c == '/' || c == '-') k |= KEY;
        if (letter || digit || c == '_') k |= WORD;
        if (c >= 0x20 && c != '"' && c != '\\') k |= QUOTED;
        if (c >= 0x20 && c != '"' && c != ' ') k |= BARE;
        classes[c] = k;
    }
}

static inline int is(const uint8_t *v, Py_ssize_t p, uint8_t k) { return classes[v[p]] & k; }

/* Values are skipped eight bytes at a time (words.h's exact zero-byte test). */

static inline int first_byte(uint64_t bits) { return lowest_bit(bits) >> 3; } /* of a word's high bits (not 0) */

/* The first byte at or after p that is `stop` or `other` or a control byte, or else of no class `k`
 * (the same set): a word's bytes at a time while they are in the buffer of n bytes. */
static inline Py_ssize_t skip(const uint8_t *v, Py_ssize_t p, Py_ssize_t n, uint8_t stop, uint8_t other, uint8_t k) {
    for (; p + 8 <= n; p += 8) {
        uint64_t w;
        memcpy(&w, v + p, 8);
        uint64_t stops = zero_bytes(w ^ (ONES * stop)) | zero_bytes(w ^ (ONES * other)) | zero_bytes(w & (ONES * 0xE0));
        if (stops) return p + first_byte(stops);
    }
    while (is(v, p, k)) p++;
    return p;
}

/* Whether v[s:e] (its first byte a letter) is a valid line; `second`: its second token's start, or e. */
static int valid_line(const uint8_t *v, Py_ssize_t n, Py_ssize_t s, Py_ssize_t e, Py_ssize_t *second) {
    Py_ssize_t end = v[e - 1] == '\r' ? e - 1 : e; /* the rule strips that CR */
    Py_ssize_t p = s;
    *second = e;
    for (;;) {
        if (!is(v, p, LETTER)) return 0;
        Py_ssize_t q = p + 1;
        while (is(v, q, KEY)) q++;
        if (v[q] != '=') return 0;
        p = q + 1;
        if (v[p] == '"') {
            p++;
            for (;;) {
                p = skip(v, p, n, '"', '\\', QUOTED);
                if (v[p] != '\\' || v[p + 1] < 0x20) break;
                p += 2; /* an escape: a backslash and a byte that is no control byte */
            }
            if (v[p] != '"') return 0;
            p++;
        } else {
            p = skip(v, p, n, ' ', '"', BARE);
        }
        if (v[p] != ' ' && p != end) return 0;
        while (v[p] == ' ') p++;
        if (p == end) return 1;
        if (*second == e) *second = p;
    }
}

/* The length of `level=` or `lvl=` at v[p] (0: neither), the line ending at e. */
static inline int starts_level(const uint8_t *v, Py_ssize_t p, Py_ssize_t e) {
    return e - p >= 6 && memcmp(v + p, "level=", 6) == 0 ? 6 : e - p >= 4 && memcmp(v + p, "lvl=", 4) == 0 ? 4 : 0;
}

/* Whether v[s:e] holds `level=` or `lvl=` after a space. */
static int level_key_after_space(const uint8_t *v, Py_ssize_t s, Py_ssize_t e) {
    const uint8_t *p = v + s, *end = v + e;
    while ((p = memchr(p, '=', end - p)) != NULL) {
        if ((p - 6 >= v + s && memcmp(p - 6, " level", 6) == 0) || (p - 4 >= v + s && memcmp(p - 4, " lvl", 4) == 0)) return 1;
        p++;
    }
    return 0;
}

static uint8_t leveled_or_plain(const uint8_t *v, Py_ssize_t s, Py_ssize_t e, Py_ssize_t second, uint64_t *key) {
    int first = starts_level(v, s, e);
    Py_ssize_t at = first ? s + first : second < e && starts_level(v, second, e) ? second + starts_level(v, second, e) : 0;
    if (at) {
        int length = 0;
        while (length < 8 && is(v, at + length, WORD)) length++;
        uint8_t after = v[at + length]; /* a CR in a valid line is the one before its newline */
        if (length > 0 && (after == ' ' || after == '\n' || after == '\r')) {
            uint64_t w = 0;
            memcpy(&w, v + at, length);
            *key = w | (length < 8 ? (uint64_t)length << 56 : 0);
            return LEVELED;
        }
    }
    return !first && !level_key_after_space(v, s, e) ? PLAIN : UNSETTLED;
}

/* Surely no record: no key first, or a first key that ends at neither "=" nor "@". */
static int no_record(const uint8_t *v, Py_ssize_t s) {
    uint8_t h = v[s];
    if (h == ' ' || h == '\t') {
        uint8_t next = v[s + 1];
        return !(is(v, s + 1, LETTER) || next == '_' || next == ' ' || next == '\t');
    }
    if (!(is(v, s, LETTER) || h == '_')) return 1;
    Py_ssize_t q = s + 1;
    while (is(v, q, KEY)) q++;
    return v[q] != '=' && v[q] != '@';
}

static uint8_t kind_of(const uint8_t *v, Py_ssize_t n, Py_ssize_t s, Py_ssize_t e, uint64_t *key) {
    if (e == s || (e == s + 1 && v[s] == '\r')) return BLANK;
    Py_ssize_t second;
    if (is(v, s, LETTER) && valid_line(v, n, s, e, &second)) return leveled_or_plain(v, s, e, second, key);
    return s + NO_RECORD_GUARD <= n && no_record(v, s) ? NO_RECORD : UNSETTLED;
}

static PyObject *read_lines(PyObject *self, PyObject *args) {
    Py_buffer buffer, ends, kinds, keys;
    if (!PyArg_ParseTuple(args, "y*y*w*w*", &buffer, &ends, &kinds, &keys)) return NULL;
    Py_ssize_t lines = ends.len / 8;
    PyObject *out = NULL;
    if (kinds.len < lines || keys.len < lines * 8 || (lines && ((const int64_t *)ends.buf)[lines - 1] != buffer.len - 1)) {
        PyErr_SetString(PyExc_ValueError, "read_lines: the buffer must end with its last newline, the outputs hold every line");
        goto done;
    }
    const uint8_t *v = buffer.buf;
    const int64_t *end = ends.buf;
    uint8_t *kind = kinds.buf;
    uint64_t *key = keys.buf;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t s = 0;
    for (Py_ssize_t i = 0; i < lines; i++) {
        key[i] = 0;
        kind[i] = kind_of(v, buffer.len, s, end[i], key + i);
        s = end[i] + 1;
    }
    Py_END_ALLOW_THREADS
    out = Py_None;
    Py_INCREF(out);
done:
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&kinds);
    PyBuffer_Release(&keys);
    return out;
}

static PyMethodDef methods[] = {
    {"read_lines", read_lines, METH_VARARGS, "what each line of a logfmt buffer surely is (kinds, keys)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_logfmt", NULL, -1, methods};

PyMODINIT_FUNC PyInit__logfmt(void) {
    fill_classes();
    return PyModule_Create(&module);
}
