/* JSON lines settled one line at a time: the compiled twin of formats/json_bits.read_lines.
 *
 * read_lines(buffer, guard) -> (ends, kinds, values)
 *
 * For each line of `buffer` (its last byte a "\n"): its "\n"'s offset in
 * `ends` (a bytearray of little-endian int64) and its kind in `kinds` (one
 * byte): UNSURE (left to the sure pattern and the per-line rule), BLANK, PLAIN
 * (a record without level: NONE), NO_RECORD (json.loads refuses it; only for
 * lines starting `guard` bytes or more before the buffer's end, as the numpy
 * reader), or LEVELED + t: a record whose level is read from values[t], a
 * (JSON value's bytes, how many lines have it) pair.
 *
 * Each line is parsed by JSON's grammar as Python's json module reads it
 * (whitespace " \t\r", strict strings, numbers, true, false, null, nesting),
 * and the per-line rule (engine.py's _json_level) is applied to what it finds:
 * the last value of each of the top-level keys "level", "severity", "lvl",
 * "log.level" (null: as if absent), in that order, or the "level" of the last
 * top-level "log" when that is an object. A line is UNSURE rather than
 * judged when anything is beyond what this reads exactly: bytes that are no
 * ASCII (UTF-8 decoding), NUL (json.loads may decode UTF-16), NaN and
 * Infinity, integers of over 4000 digits (int() refuses 4300), nesting deeper
 * than 64, backslashes in a key that the rule reads, or a level that is a
 * string with escapes. A syntax error met before any of those makes the line
 * NO_RECORD: json.loads then fails whatever follows. The parser needs no
 * bounds checks within a line: it stops at the "\n" that ends it, which no
 * rule accepts, and the line's end is where it stops (or, after a line it
 * refuses, the next "\n": it passed none).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "words.h"
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

enum { UNSURE, BLANK, PLAIN, NO_RECORD, LEVELED };            /* line kinds, as json_bits.py reads them */
enum { BAD = -1, DOUBT = -2 };                                /* json.loads refuses; not sure: the rule decides */
enum { ABSENT, NUL, LITERAL, NUMBER, TEXT, ESCAPED, OBJECT, ARRAY }; /* what a value is */
enum { LEVEL_KEYS = 4, LOG = 4, OTHER = 5 };                  /* level, severity, lvl, log.level; "log" */

#define DEEPEST 64
#define LONGEST_INTEGER 4000
#define MOST_VALUES (256 - LEVELED) /* distinct level values per call */
#define TABLE 512                   /* their hash table's slots */

#define BLOCKS 8 /* the bytes of a line that plain_run reads by masks: 64 * BLOCKS */

typedef struct {
    int type;
    Py_ssize_t at, size;
} Value;

#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline)) static inline
#else
#define ALWAYS_INLINE static inline
#endif

typedef struct {
    const unsigned char *p;
    Py_ssize_t i;
    Py_ssize_t n;             /* the buffer's size: no read reaches it */
    Py_ssize_t base;          /* the line's first byte */
    int blocks;               /* masks made */
    uint64_t masks[BLOCKS];   /* masks[k] bit j: byte base + 64k + j is special (block_mask) */
} Cursor;

/* Bytes that a string holds as they are (no quote, backslash, control byte or non-ASCII). */
static unsigned char plain_byte[256];

static void init_tables(void) {
    for (int b = 0x20; b < 0x80; b++) plain_byte[b] = b != '"' && b != '\\';
}

/* Past JSON's whitespace from `i` on. */
static inline Py_ssize_t blanks(const unsigned char *p, Py_ssize_t i) {
    while (p[i] == ' ' || p[i] == '\t' || p[i] == '\r') i++;
    return i;
}

static inline int is_digit(unsigned char b) { return (unsigned)(b - '0') < 10; }

static inline int is_hex(unsigned char b) { return is_digit(b) || (unsigned)((b | 0x20) - 'a') < 6; }

/* A byte no string or token holds: NUL (json.loads may read the line as UTF-16), or another. */
static inline int refused(unsigned char b) { return b == 0 || b >= 0x80 ? DOUBT : BAD; }

/* The high bit of each byte of `w` that no string holds as it is: a quote, a backslash, a control
 * byte or non-ASCII. Exact for every byte (no carry crosses bytes): a byte's low seven bits plus
 * 0x60 reach its high bit unless they are below 0x20. */
static inline uint64_t special_bytes(uint64_t w) {
    return zero_bytes(w ^ (ONES * '"')) | zero_bytes(w ^ (ONES * '\\')) | ((~((w & LOW7) + ONES * 0x60) | w) & HIGHS);
}

/* Bit k: whether byte k of the 64 at `p` is one that no string holds as it is. */
static inline uint64_t block_mask(const unsigned char *p) {
    uint64_t mask = 0;
#if defined(__SSE2__) && defined(__GNUC__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    for (int k = 0; k < 64; k += 16) { /* a signed compare below 0x20 takes control bytes and non-ASCII at once */
        __m128i x = _mm_loadu_si128((const __m128i *)(p + k));
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)), _mm_cmplt_epi8(x, space));
        mask |= (uint64_t)(uint32_t)_mm_movemask_epi8(special) << k;
    }
#else
    for (int k = 0; k < 64; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        mask |= ((special_bytes(w) >> 7) * 0x0102040810204080ULL) >> 56 << k; /* the high bits gathered */
    }
#endif
    return mask;
}

/* Past the bytes from `i` on that a string holds as they are: by the masks of the line's first
 * 64 * BLOCKS bytes, made as the parse first reaches each (no string then costs a loop), and
 * beyond them (or near the buffer's end) word by word. */
ALWAYS_INLINE Py_ssize_t plain_run(Cursor *c, Py_ssize_t i) {
    for (Py_ssize_t offset = i - c->base; offset < 64 * BLOCKS; offset = (offset | 63) + 1, i = c->base + offset) {
        int k = (int)(offset >> 6);
        for (; c->blocks <= k; c->blocks++) {
            if (c->base + 64 * (c->blocks + 1) > c->n) goto words;
            c->masks[c->blocks] = block_mask(c->p + c->base + 64 * c->blocks);
        }
        uint64_t later = c->masks[k] >> (offset & 63);
        if (later != 0) return i + lowest_bit(later);
    }
words:
    while (i + 8 <= c->n) {
        uint64_t w, special;
        memcpy(&w, c->p + i, 8);
        if ((special = special_bytes(w)) != 0) return i + (lowest_bit(special) >> 3);
        i += 8;
    }
    while (plain_byte[c->p[i]]) i++;
    return i;
}

/* At a string's opening quote: past its closing one; TEXT, ESCAPED, BAD or DOUBT. */
static int string(Cursor *c) {
    const unsigned char *p = c->p;
    Py_ssize_t i = c->i + 1;
    int type = TEXT;
    for (;;) {
        i = plain_run(c, i);
        if (p[i] == '"') {
            c->i = i + 1;
            return type;
        }
        if (p[i] != '\\') return refused(p[i]); /* a control byte (the newline too: unterminated) */
        unsigned char e = p[i + 1];
        if (e == 'u') {
            if (!(is_hex(p[i + 2]) && is_hex(p[i + 3]) && is_hex(p[i + 4]) && is_hex(p[i + 5]))) return BAD;
            i += 6;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
            i += 2;
        } else {
            return refused(e);
        }
        type = ESCAPED;
    }
}

/* At a number's first byte ('-' or a digit): past it, as json's scanner takes it; NUMBER, BAD or DOUBT. */
static int number(Cursor *c) {
    const unsigned char *p = c->p;
    Py_ssize_t i = c->i + (p[c->i] == '-');
    if (p[i] == '0') {
        i++;
    } else if (p[i] >= '1' && p[i] <= '9') {
        while (is_digit(p[i])) i++;
    } else {
        return p[i] == 'I' ? DOUBT : refused(p[i]); /* -Infinity */
    }
    if (i - c->i > LONGEST_INTEGER) return DOUBT;
    if (p[i] == '.' && is_digit(p[i + 1])) {
        i += 2;
        while (is_digit(p[i])) i++;
    }
    if ((p[i] | 0x20) == 'e') { /* an exponent, if digits follow (else the number ends before the e) */
        Py_ssize_t j = i + 1 + (p[i + 1] == '+' || p[i + 1] == '-');
        if (is_digit(p[j])) {
            while (is_digit(p[j])) j++;
            i = j;
        }
    }
    c->i = i;
    return NUMBER;
}

static int value(Cursor *c, int depth);

/* At a '{' or '[' below the top: past its closing bracket; OBJECT, ARRAY, BAD or DOUBT. */
static int container(Cursor *c, int depth) {
    if (depth > DEEPEST) return DOUBT;
    const unsigned char *p = c->p;
    int object = p[c->i] == '{';
    unsigned char close = object ? '}' : ']';
    c->i++;
    c->i = blanks(c->p, c->i);
    if (p[c->i] == close) {
        c->i++;
        return object ? OBJECT : ARRAY;
    }
    for (;;) {
        int type;
        if (object) {
            if (p[c->i] != '"') return refused(p[c->i]);
            if ((type = string(c)) < 0) return type;
            c->i = blanks(c->p, c->i);
            if (p[c->i] != ':') return refused(p[c->i]);
            c->i++;
            c->i = blanks(c->p, c->i);
        }
        if ((type = value(c, depth + 1)) < 0) return type;
        c->i = blanks(c->p, c->i);
        if (p[c->i] == close) {
            c->i++;
            return object ? OBJECT : ARRAY;
        }
        if (p[c->i] != ',') return refused(p[c->i]);
        c->i++;
        c->i = blanks(c->p, c->i);
    }
}

static inline int word(Cursor *c, const char *text, int type) {
    const unsigned char *p = c->p + c->i;
    for (int k = 0; text[k]; k++)
        if (p[k] != (unsigned char)text[k]) return refused(p[k]);
    c->i += strlen(text);
    return type;
}

/* At a value's first byte: past it; its type, BAD or DOUBT. */
static int value(Cursor *c, int depth) {
    switch (c->p[c->i]) {
    case '"': return string(c);
    case '{':
    case '[': return container(c, depth);
    case 't': return word(c, "true", LITERAL);
    case 'f': return word(c, "false", LITERAL);
    case 'n': return word(c, "null", NUL);
    case 'N':
    case 'I': return DOUBT; /* NaN, Infinity */
    default: return c->p[c->i] == '-' || is_digit(c->p[c->i]) ? number(c) : refused(c->p[c->i]);
    }
}

/* Which key the rule reads a (plain) key as. */
static int key_of(const unsigned char *k, Py_ssize_t n) {
    if (k[0] != 'l' && k[0] != 's') return OTHER;
    switch (n) {
    case 3: return memcmp(k, "lvl", 3) == 0 ? 2 : memcmp(k, "log", 3) == 0 ? LOG : OTHER;
    case 5: return memcmp(k, "level", 5) == 0 ? 0 : OTHER;
    case 8: return memcmp(k, "severity", 8) == 0 ? 1 : OTHER;
    case 9: return memcmp(k, "log.level", 9) == 0 ? 3 : OTHER;
    default: return OTHER;
    }
}

/* At an object's '{': past its '}', with the last value of each key the rule reads in `found`
 * (the top: level, severity, lvl, log.level and, in found[LOG], the level of the last "log"
 * if that is an object; `top` 0: found[0] is its "level"). Returns OBJECT, BAD or DOUBT.
 * The position stays in a register: plain strings and numbers, most values, are read here. */
static int record(Cursor *c, int top, Value *found) {
    const unsigned char *p = c->p;
    Py_ssize_t i = blanks(p, c->i + 1);
    if (p[i] == '}') {
        c->i = i + 1;
        return OBJECT;
    }
    for (;;) {
        if (p[i] != '"') return refused(p[i]);
        Py_ssize_t key = i + 1;
        i = plain_run(c, key);
        if (p[i] != '"') return p[i] == '\\' ? DOUBT : refused(p[i]); /* "lev\u0065l" is "level" */
        int slot = key_of(p + key, i - key);
        if (!top && slot != 0) slot = OTHER;
        i = blanks(p, i + 1);
        if (p[i] != ':') return refused(p[i]);
        Py_ssize_t at = i = blanks(p, i + 1);
        int type;
        if (top && slot == LOG) found[LOG].type = ABSENT; /* this "log" replaces any before it */
        if (p[at] == '"' && p[i = plain_run(c, at + 1)] == '"') {
            i++;
            type = TEXT;
        } else {
            c->i = at;
            if (top && slot == LOG && p[at] == '{') type = record(c, 0, &found[LOG]);
            else type = is_digit(p[at]) ? number(c) : value(c, 1);
            if (type < 0) return type;
            i = c->i;
        }
        if (slot < LEVEL_KEYS) found[slot] = (Value){type, at, i - at};
        i = blanks(p, i);
        if (p[i] == ',') {
            i = blanks(p, i + 1);
            continue;
        }
        if (p[i] != '}') return refused(p[i]);
        c->i = i + 1;
        return OBJECT;
    }
}

/* The kind of the line at c->i, which moves to the "\n" that ends it; for LEVELED, its level's value in `level`. */
static int line_kind(Cursor *c, Value *level) {
    const unsigned char *p = c->p;
    Py_ssize_t start = c->i;
    if (p[start] == '\n' || (p[start] == '\r' && p[start + 1] == '\n')) {
        c->i += p[start] == '\r';
        return BLANK;
    }
    c->i = blanks(c->p, c->i);
    if (p[c->i] != '{') return NO_RECORD; /* the rule wants "{" after the whitespace bytes.lstrip takes */
    Value found[LEVEL_KEYS + 1];
    for (int k = 0; k <= LEVEL_KEYS; k++) found[k].type = ABSENT;
    int type = record(c, 1, found);
    if (type < 0) return type == BAD ? NO_RECORD : UNSURE;
    c->i = blanks(c->p, c->i);
    if (p[c->i] != '\n') return refused(p[c->i]) == BAD ? NO_RECORD : UNSURE; /* data after the object */
    for (int k = 0; k <= LEVEL_KEYS; k++) { /* found[LOG]: log.level's stand-in, read after it */
        Value *v = &found[k];
        if (v->type <= NUL) continue; /* absent or null: the rule reads on */
        if (v->type == TEXT || v->type == NUMBER) {
            *level = *v;
            return LEVELED;
        }
        return v->type == ESCAPED ? UNSURE : PLAIN; /* true, false, an object or an array: NONE */
    }
    return PLAIN;
}

/* The distinct level values met, with their counts (an open-addressing hash table keyed by a
 * value's first 16 bytes, zero-padded, and its size). */
typedef struct {
    uint64_t head[MOST_VALUES][2];
    Py_ssize_t at[MOST_VALUES], size[MOST_VALUES], count[MOST_VALUES];
    int n;
    short slot[TABLE]; /* value index + 1, 0 empty */
} Values;

static inline uint64_t low_bytes(uint64_t w, Py_ssize_t k) { return k >= 8 ? w : k <= 0 ? 0 : w & ((1ULL << (8 * k)) - 1); }

/* The index of value `v` (in the `n` bytes at `p`) in `values`, added if new; -1 when they are full. */
static int value_index(Values *values, const unsigned char *p, Py_ssize_t n, const Value *v) {
    uint64_t head[2] = {0, 0};
    if (v->at + 16 <= n) {
        memcpy(head, p + v->at, 16);
    } else {
        for (Py_ssize_t k = 0; k < v->size && k < 16; k++) head[k >> 3] |= (uint64_t)p[v->at + k] << (8 * (k & 7));
    }
    head[0] = low_bytes(head[0], v->size);
    head[1] = low_bytes(head[1], v->size - 8);
    uint64_t h = (head[0] * 0x9E3779B97F4A7C15ULL) ^ (head[1] * 0xC2B2AE3D27D4EB4FULL) ^ (uint64_t)v->size;
    for (uint32_t s = (uint32_t)(h >> 55) % TABLE;; s = (s + 1) % TABLE) {
        int t = values->slot[s] - 1;
        if (t < 0) {
            if (values->n == MOST_VALUES) return -1;
            t = values->n++;
            values->head[t][0] = head[0];
            values->head[t][1] = head[1];
            values->at[t] = v->at;
            values->size[t] = v->size;
            values->count[t] = 0;
            values->slot[s] = (short)(t + 1);
            return t;
        }
        if (values->size[t] == v->size && values->head[t][0] == head[0] && values->head[t][1] == head[1]
            && (v->size <= 16 || memcmp(p + values->at[t] + 16, p + v->at + 16, v->size - 16) == 0))
            return t;
    }
}

/* Room for `*capacity` (doubled) lines in `ends` and `kinds`. */
static int grow(PyObject *ends, PyObject *kinds, Py_ssize_t *capacity) {
    *capacity *= 2;
    return PyByteArray_Resize(ends, *capacity * 8) < 0 || PyByteArray_Resize(kinds, *capacity) < 0 ? -1 : 0;
}

static PyObject *read_lines(PyObject *self, PyObject *args) {
    Py_buffer buffer;
    Py_ssize_t guard;
    if (!PyArg_ParseTuple(args, "y*n", &buffer, &guard)) return NULL;
    const unsigned char *p = buffer.buf;
    Py_ssize_t n = buffer.len, capacity = n / 64 + 16, lines = 0;
    PyObject *ends = NULL, *kinds = NULL, *found = NULL, *out = NULL;
    Values *values = NULL;
    if (n == 0 || p[n - 1] != '\n') { /* the parser stops at a line's newline, never past it */
        PyErr_SetString(PyExc_ValueError, "the buffer's last byte must be a newline");
        goto done;
    }
    values = PyMem_Calloc(1, sizeof(Values));
    ends = PyByteArray_FromStringAndSize(NULL, capacity * 8);
    kinds = PyByteArray_FromStringAndSize(NULL, capacity);
    if (values == NULL || ends == NULL || kinds == NULL) {
        if (values == NULL) PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    Cursor c = {p, 0, n, 0, 0, {0}};
    while (c.i < n) {
        if (lines == capacity) {
            Py_BLOCK_THREADS
            if (grow(ends, kinds, &capacity) < 0) goto done;
            Py_UNBLOCK_THREADS
        }
        Py_ssize_t start = c.base = c.i;
        c.blocks = 0;
        Value level;
        int kind = line_kind(&c, &level);
        if (p[c.i] != '\n') c.i = (const unsigned char *)memchr(p + c.i, '\n', n - c.i) - p; /* no "\n" before c.i */
        if (kind == LEVELED) {
            int t = value_index(values, p, n, &level);
            if (t < 0) {
                kind = UNSURE;
            } else {
                values->count[t]++;
                kind = LEVELED + t;
            }
        } else if (kind == NO_RECORD && start + guard > n) {
            kind = UNSURE; /* the continuation rule reads words past it */
        }
        ((int64_t *)PyByteArray_AS_STRING(ends))[lines] = c.i;
        ((unsigned char *)PyByteArray_AS_STRING(kinds))[lines++] = (unsigned char)kind;
        c.i++;
    }
    Py_END_ALLOW_THREADS
    if (PyByteArray_Resize(ends, lines * 8) < 0 || PyByteArray_Resize(kinds, lines) < 0) goto done;
    found = PyList_New(values->n);
    for (int t = 0; found != NULL && t < values->n; t++) {
        PyObject *item = Py_BuildValue("(y#n)", p + values->at[t], values->size[t], values->count[t]);
        if (item == NULL) Py_CLEAR(found);
        else PyList_SET_ITEM(found, t, item);
    }
    if (found != NULL) out = PyTuple_Pack(3, ends, kinds, found);
done:
    PyMem_Free(values);
    Py_XDECREF(ends);
    Py_XDECREF(kinds);
    Py_XDECREF(found);
    PyBuffer_Release(&buffer);
    return out;
}

static PyMethodDef methods[] = {
    {"read_lines", read_lines, METH_VARARGS, "the newline and kind of each JSON line of a buffer, and its level values"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_json", NULL, -1, methods};

PyMODINIT_FUNC PyInit__json(void) {
    init_tables();
    return PyModule_Create(&module);
}
