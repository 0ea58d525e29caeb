/* What the scanners share: 64-bit words read little-endian, and exact tests of their bytes.
 * Included by each scanner's .c (each is its own module: setup.py). */
#ifndef LOGANALYSER_WORDS_H
#define LOGANALYSER_WORDS_H

#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the scanners read little-endian words"
#endif

static const uint64_t ONES = 0x0101010101010101ULL, LOW7 = 0x7F7F7F7F7F7F7F7FULL, HIGHS = 0x8080808080808080ULL;

/* The high bit of each zero byte of x, exactly: no carry crosses bytes (a byte's low seven
 * bits plus 0x7F reach its high bit unless they are zero). */
static inline uint64_t zero_bytes(uint64_t x) { return ~(((x & LOW7) + LOW7) | x | LOW7); }

/* The index of the lowest set bit of `bits` (not 0). */
static inline int lowest_bit(uint64_t bits) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(bits);
#else
    int k = 0;
    while (!(bits & 1)) bits >>= 1, k++;
    return k;
#endif
}

#endif
