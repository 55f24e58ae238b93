/*
 * ledger._jcs: the compiled fast path of ledger.canonical.canonical_event.
 *
 * canonical(line) parses one JSON text (bytes or bytearray) and returns its RFC 8785 (JCS)
 * bytes, written in one pass without building any Python object, or None whenever it is not
 * certain: invalid JSON or UTF-8, a byte order mark, a top level that is not an object, a
 * duplicate key, nesting deeper than 254 levels, an integer literal beyond +-(2**53-1), a
 * non-finite number, an escaped lone surrogate, output over 65535 bytes, another input type, or
 * a rare case it does not handle. ledger/canonical.py then runs the Python path, which is the
 * reference: it returns the same bytes or raises EntryError with its precise message. So this
 * module never refuses anything itself, and never accepts what the Python path refuses.
 *
 * Numbers. An integer literal within +-(2**53-1) is written as it is ("-0" as "0"). Any other
 * literal (fraction or exponent) stands for the double nearest to it, written as ECMAScript's
 * Number.prototype.toString does: the shortest digits that read back as that double (Python's
 * repr digits), laid out as 1e+21, 1e-7, 0.000001, 123.45 or 100. Three ways to get the digits:
 *   - at most 15 significant digits and a decimal exponent within +-26: the literal's own digits
 *     are the shortest (any decimal of at most 15 digits round-trips through a double, so no
 *     other one of at most 15 digits reads as the same double), with no arithmetic at all;
 *   - 16 or 17 digits in that range (what repr writes for most computed floats): the double is
 *     found, and the literal's digits proven to be its shortest and nearest digits, with exact
 *     128-bit integer comparisons of decimal and binary values;
 *   - otherwise, or when the proof fails (the literal is not how repr writes its double):
 *     PyOS_string_to_double and PyOS_double_to_string(x, 'r', ...), as canonical.py does.
 * Keys are sorted by their UTF-16 code units: the same as comparing the UTF-8 bytes, except
 * that a character at or above U+10000 (a surrogate pair) sorts before U+E000..U+FFFF.
 *
 * Scratch buffers are static and sized by the 65535-byte output limit, so nothing is allocated
 * per call but the result. The GIL is held throughout (nothing here calls back into Python code).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OUT 65535 /* MAX_ENTRY_BYTES: longer output returns None */
#define MAX_DEPTH 254 /* arrays and objects nested deeper return None */
#define MAX_MEMBERS (MAX_OUT / 4 + 2) /* each member of an open object has >= 4 output bytes */

typedef struct {
    uint64_t prefix;     /* the key's first 8 bytes, big-endian, zero-padded */
    const uint8_t *key;  /* the key, decoded (UTF-8, escapes resolved) */
    uint32_t klen;
    uint32_t ascii;      /* whether those 8 bytes are ASCII: prefixes that differ then decide */
    uint32_t start;      /* offset in out of the member's key (its opening quote) */
    uint32_t len;        /* bytes of key, ':' and value in out */
} Member;

/* The parser's state: a static object, not a pointer, so that the compiler knows the bytes
   written to out do not change it. */
static struct {
    const uint8_t *p;   /* next input byte */
    const uint8_t *end; /* input end; *end is a NUL byte (bytes and bytearray guarantee it) */
    size_t olen;        /* bytes written to out */
    size_t nmem;        /* members of the open objects, innermost last */
    size_t klen;        /* bytes used in keys */
} S;

static uint8_t out[MAX_OUT + 64];
static uint8_t tmp[MAX_OUT + 64];   /* an object's members while they are reordered */
static uint8_t keys[MAX_OUT + 64];  /* decoded keys that had escapes (others point into the input) */
static Member members[MAX_MEMBERS];

#define FAIL (-1)
#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif
#define NEED(n)                              \
    do {                                     \
        if (UNLIKELY(S.olen + (n) > MAX_OUT)) { \
            return FAIL;                     \
        }                                    \
    } while (0)

/* Bytes a string holds and writes as they are: printable ASCII other than '"' and '\\'. */
static uint8_t plain[256];
/* JSON whitespace: space, tab, LF, CR. */
static uint8_t space[256];
/* Hex digit values, 0xff for others. */
static uint8_t hexval[256];

static void
init_tables(void)
{
    for (int c = 0; c < 256; c++) {
        plain[c] = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
        space[c] = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        hexval[c] = 0xff;
    }
    for (int c = 0; c < 10; c++) {
        hexval['0' + c] = (uint8_t)c;
    }
    for (int c = 0; c < 6; c++) {
        hexval['a' + c] = hexval['A' + c] = (uint8_t)(10 + c);
    }
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR 1
#define ONES 0x0101010101010101ULL
#else
#define SWAR 0
#endif

static inline void
skip_space(void)
{
    while (space[*S.p]) {
        S.p++;
    }
}

/* -- strings ----------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence (2..4 bytes) at p whose lead byte is >= 0x80, else 0: no
   overlong forms, no encoded surrogates, nothing above U+10FFFF. A NUL stops it at the end. */
static inline int
utf8_length(const uint8_t *p)
{
    uint8_t c = p[0], c1 = p[1];
    if (c >= 0xc2 && c <= 0xdf) {
        return (c1 & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return c1 >= lo && c1 <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return c1 >= lo && c1 <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

static inline int
hex4(const uint8_t *p)
{
    /* A NUL at the end is no hex digit, so this never reads past it. */
    uint8_t a = hexval[p[0]];
    if (a == 0xff) return -1;
    uint8_t b = hexval[p[1]];
    if (b == 0xff) return -1;
    uint8_t c = hexval[p[2]];
    if (c == 0xff) return -1;
    uint8_t d = hexval[p[3]];
    if (d == 0xff) return -1;
    return (a << 12) | (b << 8) | (c << 4) | d;
}

/* Decode the escape at p (p[0] == '\\'): the code point, or -1 for an invalid escape or a lone
   surrogate. *len gets the escape's length in the input. */
static inline int32_t
unescape(const uint8_t *p, int *len)
{
    *len = 2;
    switch (p[1]) {
    case '"': return '"';
    case '\\': return '\\';
    case '/': return '/';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': break;
    default: return -1;
    }
    int cp = hex4(p + 2);
    *len = 6;
    if (cp < 0xd800 || cp > 0xdfff) {
        return cp; /* -1 for bad hex */
    }
    if (cp >= 0xdc00 || p[6] != '\\' || p[7] != 'u') {
        return -1; /* a low surrogate first, or a high one alone */
    }
    int lo = hex4(p + 8);
    if (lo < 0xdc00 || lo > 0xdfff) {
        return -1;
    }
    *len = 12;
    return 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
}

static inline int
utf8_encode(uint8_t *d, int32_t cp)
{
    if (cp < 0x80) {
        d[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (uint8_t)(0xc0 | (cp >> 6));
        d[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (uint8_t)(0xe0 | (cp >> 12));
        d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (uint8_t)(0xf0 | (cp >> 18));
    d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Write a code point at d as JCS does in a string: short escapes for '"', '\\', \b \f \n \r \t,
   \u00xx (lowercase) for the other controls, everything else as UTF-8. Returns the end. */
static inline uint8_t *
write_char(uint8_t *d, int32_t cp)
{
    static const char hexdigits[] = "0123456789abcdef";
    if (cp >= 0x20 && cp != '"' && cp != '\\') {
        return d + utf8_encode(d, cp);
    }
    d[0] = '\\';
    switch (cp) {
    case '"': d[1] = '"'; break;
    case '\\': d[1] = '\\'; break;
    case '\b': d[1] = 'b'; break;
    case '\f': d[1] = 'f'; break;
    case '\n': d[1] = 'n'; break;
    case '\r': d[1] = 'r'; break;
    case '\t': d[1] = 't'; break;
    default:
        memcpy(d + 1, "u00", 3);
        d[4] = (uint8_t)hexdigits[cp >> 4];
        d[5] = (uint8_t)hexdigits[cp & 0xf];
        return d + 6;
    }
    return d + 2;
}

/* Parse the string at S.p (at its opening quote) and write it in JCS form. *escaped is set
   when it has an escape (so its decoded form differs from its input bytes).

   Output is written ahead of the checks: out has 64 spare bytes past MAX_OUT, no step writes
   more than 8 bytes, and o <= limit at the start of each step. */
static int
parse_string(int *escaped)
{
    const uint8_t *p = S.p + 1, *end = S.end;
    uint8_t *o = out + S.olen, *const limit = out + MAX_OUT;
    *escaped = 0;
    *o++ = '"';
    for (;;) {
        if (UNLIKELY(o > limit)) {
            return FAIL; /* too long */
        }
#if SWAR
        /* Eight bytes at a time while none needs a look; the first that does is the lowest
           flagged byte (a borrow only flags bytes above a flagged one). */
        while (LIKELY(end - p >= 8)) {
            uint64_t w, flags;
            memcpy(&w, p, 8);
            memcpy(o, &w, 8);
            flags = ((w - ONES * 0x20) | ((w ^ (ONES * '"')) - ONES) | ((w ^ (ONES * '\\')) - ONES))
                    & ~w & (ONES * 0x80);
            flags |= w & (ONES * 0x80);
            if (flags) {
                size_t skip = (size_t)__builtin_ctzll(flags) >> 3;
                p += skip;
                o += skip;
                break;
            }
            p += 8;
            o += 8;
            if (UNLIKELY(o > limit)) {
                return FAIL;
            }
        }
#endif
        uint8_t c = *p;
        if (LIKELY(plain[c])) {
            *o++ = c;
            p++;
            continue;
        }
        if (c >= 0x80) {
            int n = utf8_length(p);
            if (UNLIKELY(n == 0)) {
                return FAIL;
            }
            o[0] = p[0];
            o[1] = p[1];
            if (n > 2) {
                o[2] = p[2];
                if (n > 3) {
                    o[3] = p[3];
                }
            }
            p += n;
            o += n;
            continue;
        }
        if (c == '"') {
            *o++ = '"';
            if (UNLIKELY(o > limit)) {
                return FAIL;
            }
            S.olen = (size_t)(o - out);
            S.p = p + 1;
            return 0;
        }
        if (c != '\\') {
            return FAIL; /* a raw control character, or the end of the input */
        }
        int len;
        int32_t cp = unescape(p, &len);
        if (cp < 0) {
            return FAIL;
        }
        o = write_char(o, cp);
        *escaped = 1;
        p += len;
    }
}

/* Decode a string already checked by parse_string (from its opening quote) into keys. */
static const uint8_t *
decode_key(const uint8_t *p, uint32_t *klen)
{
    uint8_t *start = keys + S.klen, *d = start;
    p++;
    while (*p != '"') {
        if (*p == '\\') {
            int len;
            d += utf8_encode(d, unescape(p, &len));
            p += len;
        }
        else {
            *d++ = *p++;
        }
    }
    *klen = (uint32_t)(d - start);
    S.klen += *klen;
    return start;
}

/* Compare two keys (UTF-8) in UTF-16 code unit order. */
static int
key_compare(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    size_t n = la < lb ? la : lb, i = 0;
    while (i < n && a[i] == b[i]) {
        i++;
    }
    if (i == n) {
        return (la > lb) - (la < lb);
    }
    uint8_t x = a[i], y = b[i];
    /* Differing lead bytes (a continuation byte can only differ after equal lead bytes): a
       4-byte character (>= U+10000, a surrogate pair in UTF-16) sorts before U+E000..U+FFFF
       (lead bytes EE and EF), not after as in UTF-8. */
    if (x >= 0xf0 && (y == 0xee || y == 0xef)) {
        return -1;
    }
    if (y >= 0xf0 && (x == 0xee || x == 0xef)) {
        return 1;
    }
    return x < y ? -1 : 1;
}

static inline void
set_prefix(Member *m)
{
    uint64_t v = 0;
    if (m->klen >= 8) {
        for (int i = 0; i < 8; i++) {
            v = v << 8 | m->key[i]; /* one load and a byte swap, to the compiler */
        }
    }
    else {
        for (uint32_t i = 0; i < m->klen; i++) {
            v |= (uint64_t)m->key[i] << (56 - 8 * i);
        }
    }
    m->ascii = (v & 0x8080808080808080ULL) == 0;
    m->prefix = v;
}

/* key_compare, deciding most pairs of ASCII keys from their first 8 bytes */
static inline int
member_compare(const Member *m, const Member *n)
{
    if (m->prefix != n->prefix && (m->ascii & n->ascii)) {
        return m->prefix < n->prefix ? -1 : 1;
    }
    return key_compare(m->key, m->klen, n->key, n->klen);
}

static int
member_qsort_compare(const void *a, const void *b)
{
    return member_compare(a, b);
}

/* -- numbers ----------------------------------------------------------------------------------- */

/* Copy n bytes in 8-byte words: it reads and writes up to 7 bytes more, so both ends need that
   room (out and tmp have 64 spare bytes; the input is checked by the caller). */
static inline void
copy_words(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        memcpy(dst + i, &w, 8);
    }
}

static int
write_bytes(const void *bytes, size_t n)
{
    NEED(n);
    memcpy(out + S.olen, bytes, n);
    S.olen += n;
    return 0;
}

/* ECMAScript Number.prototype.toString of (-1)**neg * 0.DIGITS * 10**n, where digits (k >= 1 of
   them) has no leading or trailing zeros: canonical.py's _exponent. */
static int
write_ecmascript(int neg, const char *digits, int k, int n)
{
    uint8_t *d = out + S.olen; /* at most 25 bytes: out's spare bytes take them, checked below */
    if (neg) {
        *d++ = '-';
    }
    if (k <= n && n <= 21) {
        memcpy(d, digits, k);
        memset(d + k, '0', n - k);
        d += n;
    }
    else if (0 < n && n <= 21) {
        memcpy(d, digits, n);
        d[n] = '.';
        memcpy(d + n + 1, digits + n, k - n);
        d += k + 1;
    }
    else if (-6 < n && n <= 0) {
        d[0] = '0';
        d[1] = '.';
        memset(d + 2, '0', -n);
        memcpy(d + 2 - n, digits, k);
        d += 2 - n + k;
    }
    else {
        int e = n - 1;
        *d++ = (uint8_t)digits[0];
        if (k > 1) {
            *d++ = '.';
            memcpy(d, digits + 1, k - 1);
            d += k - 1;
        }
        *d++ = 'e';
        *d++ = e > 0 ? '+' : '-';
        d += sprintf((char *)d, "%d", e > 0 ? e : -e);
    }
    S.olen = (size_t)(d - out);
    return S.olen > MAX_OUT ? FAIL : 0;
}

/* The slow and general way, as canonical.py does it: the double nearest to the literal, written
   from Python's repr digits. */
static int
write_float_repr(const uint8_t *literal, size_t len)
{
    char small[128], *buf = small, digits[32], *end, *r;
    if (len >= sizeof small && (buf = PyMem_Malloc(len + 1)) == NULL) {
        PyErr_Clear();
        return FAIL;
    }
    memcpy(buf, literal, len);
    buf[len] = '\0';
    double x = PyOS_string_to_double(buf, &end, NULL);
    int parsed = !(x == -1.0 && PyErr_Occurred()) && end == buf + len;
    if (buf != small) {
        PyMem_Free(buf);
    }
    if (!parsed) {
        PyErr_Clear();
        return FAIL; /* not expected: the literal is valid JSON */
    }
    if (!isfinite(x)) {
        return FAIL; /* Infinity: the Python path says so */
    }
    if (x == 0.0) {
        return write_bytes("0", 1); /* -0.0 too */
    }
    r = PyOS_double_to_string(x, 'r', 0, 0, NULL);
    if (r == NULL) {
        PyErr_Clear();
        return FAIL;
    }
    /* r is like -1.5e-07, 12.0, 0.001 or 1e+16: collect the significant digits and find where
       the decimal point goes (value = 0.DIGITS * 10**n). */
    const char *q = r;
    int neg = *q == '-', k = 0, n = 0, before_point = 1, leading = 1;
    q += neg;
    for (; *q && *q != 'e'; q++) {
        if (*q == '.') {
            before_point = 0;
            continue;
        }
        if (leading && *q == '0') {
            if (!before_point) {
                n--; /* 0.00123: each zero after the point moves it right */
            }
            continue;
        }
        leading = 0;
        if (k >= 30) {
            PyMem_Free(r);
            return FAIL; /* not expected: repr has at most 17 digits */
        }
        digits[k++] = *q;
        if (before_point) {
            n++;
        }
    }
    if (*q == 'e') {
        n += atoi(q + 1);
    }
    PyMem_Free(r);
    while (k > 0 && digits[k - 1] == '0') {
        k--;
    }
    if (k == 0) {
        return FAIL; /* not expected: x != 0 */
    }
    return write_ecmascript(neg, digits, k, n);
}

#ifdef __SIZEOF_INT128__
typedef unsigned __int128 u128;

static const uint64_t pow5[27] = {
    1ULL, 5ULL, 25ULL, 125ULL, 625ULL, 3125ULL, 15625ULL, 78125ULL, 390625ULL, 1953125ULL,
    9765625ULL, 48828125ULL, 244140625ULL, 1220703125ULL, 6103515625ULL, 30517578125ULL,
    152587890625ULL, 762939453125ULL, 3814697265625ULL, 19073486328125ULL, 95367431640625ULL,
    476837158203125ULL, 2384185791015625ULL, 11920928955078125ULL, 59604644775390625ULL,
    298023223876953125ULL, 1490116119384765625ULL,
};

static const double pow10_approx[27] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
    1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26,
};
static const double pow10_neg_approx[27] = {
    1e-0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13,
    1e-14, 1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22, 1e-23, 1e-24, 1e-25, 1e-26,
};

#define HIDDEN (1ULL << 52)

/* Whether the literal d * 10**q (d of 16 or 17 digits, no trailing zero, |q| <= 26) is exactly
   repr's digits for the double nearest to it: 1 if so, 0 if not or not certain.

   Exact integer arithmetic: the literal, the double m * 2**e and the ends of the interval of
   reals that round to it are all written as multiples of one unit, 2**lo / 5**t (t = -q when q
   is negative, else 0), where 10**q is ten units and 2**(e-2) is bin units. */
static int
is_shortest(uint64_t d, int q)
{
    double approx = q >= 0 ? (double)d * pow10_approx[q] : (double)d * pow10_neg_approx[-q];
    uint64_t bits, m;
    int e, t = q < 0 ? -q : 0;
    u128 ten, bin, lit, x, above, below;
    memcpy(&bits, &approx, sizeof bits);
    m = (bits & (HIDDEN - 1)) | HIDDEN;
    e = (int)((bits >> 52) & 0x7ff) - 1075;
    /* approx is within a few units in the last place: step to the double that d * 10**q rounds
       to (to nearest, ties to even). */
    for (int tries = 0;; tries++) {
        int lo = q < e - 2 ? q : e - 2;
        if (tries == 8 || q - lo > 66 || e - 2 - lo > 66) {
            return 0; /* not expected */
        }
        ten = (u128)pow5[q >= 0 ? q : 0] << (q - lo); /* < 2**(61 + 66) */
        bin = (u128)pow5[t] << (e - 2 - lo);
        if ((ten >> 66) || (bin >> 68)) {
            return 0; /* the sums below could overflow: not expected in this range */
        }
        lit = d * ten;
        x = 4 * m * bin;
        above = 2 * bin;                      /* the interval is x - below .. x + above */
        below = m == HIDDEN ? bin : 2 * bin; /* a power of two: the gap below is half */
        if (lit > x + above || (lit == x + above && (m & 1))) {
            if (++m == 2 * HIDDEN) {
                m = HIDDEN;
                e++;
            }
            continue;
        }
        if (lit < x - below || (lit == x - below && (m & 1))) {
            if (m-- == HIDDEN) {
                m = 2 * HIDDEN - 1;
                e--;
            }
            continue;
        }
        break;
    }
    /* Shortest: no decimal with fewer digits reads as the double. The nearest ones are the
       multiples of 10 * 10**q on either side of the literal; a shorter one that read as it
       would leave one of them in the interval. */
    u128 shorter = lit - (d % 10) * ten, longer = shorter + 10 * ten;
    if (m & 1) {
        if (shorter > x - below || longer < x + above) {
            return 0;
        }
    }
    else if (shorter >= x - below || longer <= x + above) {
        return 0;
    }
    /* Nearest: among the decimals of as many digits that read as the double, repr takes the one
       nearest to it, which is the literal when the double lies strictly within half a unit of
       its last digit. */
    u128 off = lit > x ? lit - x : x - lit;
    return 2 * off < ten;
}
#else
static int
is_shortest(uint64_t d, int q)
{
    (void)d;
    (void)q;
    return 0;
}
#endif

/* A number literal with a fraction or an exponent: [start, end) is the literal, int_digits and
   frac_digits its digits before and after the point (frac may be NULL), exponent the exponent. */
static int
write_float(const uint8_t *start, const uint8_t *end, const uint8_t *int_digits,
            size_t n_int, const uint8_t *frac_digits, size_t n_frac, long exponent)
{
    char all[40], *digits;
    size_t total = n_int + n_frac, first = 0, last;
    uint64_t d = 0;
    if (total > sizeof all) {
        return write_float_repr(start, (size_t)(end - start));
    }
    memcpy(all, int_digits, n_int);
    if (n_frac) {
        memcpy(all + n_int, frac_digits, n_frac);
    }
    /* The significant digits: all[first:last] */
    while (first < total && all[first] == '0') {
        first++;
    }
    if (first == total) {
        return write_bytes("0", 1); /* 0.0, -0.0, 0e5: zero, written "0" */
    }
    last = total;
    while (all[last - 1] == '0') {
        last--;
    }
    int k = (int)(last - first);
    if (k > 17) {
        return write_float_repr(start, (size_t)(end - start));
    }
    digits = all + first;
    for (int i = 0; i < k; i++) {
        d = d * 10 + (uint64_t)(digits[i] - '0');
    }
    long n = (long)n_int - (long)first + exponent; /* value = 0.DIGITS * 10**n */
    long q = n - k;                            /* value = d * 10**q */
    if (q < -26 || q > 26) {
        return write_float_repr(start, (size_t)(end - start));
    }
    if (k <= 15 || is_shortest(d, (int)q)) {
        return write_ecmascript(*start == '-', digits, k, (int)n);
    }
    return write_float_repr(start, (size_t)(end - start));
}

static int
parse_number(void)
{
    const uint8_t *p = S.p, *start = p, *int_digits, *frac_digits = NULL;
    size_t n_int, n_frac = 0;
    long exponent = 0;
    int is_float = 0;
    if (*p == '-') {
        p++;
    }
    int_digits = p;
    if (*p == '0') {
        p++;
    }
    else if (*p >= '1' && *p <= '9') {
        while ((unsigned)(*p - '0') < 10) {
            p++;
        }
    }
    else {
        return FAIL;
    }
    n_int = (size_t)(p - int_digits);
    if (*p == '.') {
        frac_digits = ++p;
        while ((unsigned)(*p - '0') < 10) {
            p++;
        }
        n_frac = (size_t)(p - frac_digits);
        if (n_frac == 0) {
            return FAIL;
        }
        is_float = 1;
    }
    if (*p == 'e' || *p == 'E') {
        int exponent_neg = 0;
        p++;
        if (*p == '+' || *p == '-') {
            exponent_neg = *p == '-';
            p++;
        }
        if ((unsigned)(*p - '0') >= 10) {
            return FAIL;
        }
        while ((unsigned)(*p - '0') < 10) {
            if (exponent < 100000) {
                exponent = exponent * 10 + (*p - '0'); /* beyond any double either way */
            }
            p++;
        }
        if (exponent_neg) {
            exponent = -exponent;
        }
        is_float = 1;
    }
    S.p = p;
    if (is_float) {
        return write_float(start, p, int_digits, n_int, frac_digits, n_frac, exponent);
    }
    if (n_int > 16) {
        return FAIL; /* beyond 2**53-1: the Python path converts or refuses it */
    }
    if (n_int == 16) {
        uint64_t v = 0;
        for (size_t i = 0; i < n_int; i++) {
            v = v * 10 + (uint64_t)(int_digits[i] - '0');
        }
        if (v > 9007199254740991ULL) {
            return FAIL;
        }
    }
    if (n_int == 1 && *int_digits == '0') {
        return write_bytes("0", 1); /* -0 too */
    }
    size_t len = (size_t)(p - start);
    if (LIKELY(S.end - start >= 24)) { /* len <= 17 */
        NEED(len);
        copy_words(out + S.olen, start, len);
        S.olen += len;
        return 0;
    }
    return write_bytes(start, len);
}

/* -- arrays and objects ------------------------------------------------------------------------ */

static int parse_value(int depth);

static int
parse_array(int depth)
{
    if (depth > MAX_DEPTH) {
        return FAIL;
    }
    S.p++;
    NEED(2);
    out[S.olen++] = '[';
    skip_space();
    if (*S.p == ']') {
        S.p++;
        out[S.olen++] = ']';
        return 0;
    }
    for (;;) {
        if (parse_value(depth) < 0) {
            return FAIL;
        }
        skip_space();
        NEED(1);
        if (*S.p == ',') {
            S.p++;
            out[S.olen++] = ',';
            skip_space();
            continue;
        }
        if (*S.p == ']') {
            S.p++;
            out[S.olen++] = ']';
            return 0;
        }
        return FAIL;
    }
}

static void
insertion_sort(Member *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        Member m = a[i];
        size_t j = i;
        while (j > 0 && member_compare(&a[j - 1], &m) > 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = m;
    }
}

/* Sort the members of the object just parsed (members[first:]), refuse duplicates, and rewrite
   them in order; the output bytes they take do not change. */
static int
reorder(size_t first)
{
    Member *m = members + first;
    size_t n = S.nmem - first, base = m[0].start, pos = base;
    if (n <= 24) {
        insertion_sort(m, n);
    }
    else {
        qsort(m, n, sizeof *m, member_qsort_compare);
    }
    for (size_t i = 1; i < n; i++) {
        if (member_compare(&m[i - 1], &m[i]) == 0) {
            return FAIL; /* a duplicate key */
        }
    }
    memcpy(tmp, out + base, S.olen - base);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            out[pos++] = ',';
        }
        copy_words(out + pos, tmp + (m[i].start - base), m[i].len);
        pos += m[i].len;
    }
    return 0;
}

static int
parse_object(int depth)
{
    size_t first = S.nmem, keys_mark = S.klen;
    int sorted = 1;
    if (depth > MAX_DEPTH) {
        return FAIL;
    }
    S.p++;
    NEED(2);
    out[S.olen++] = '{';
    skip_space();
    if (*S.p == '}') {
        S.p++;
        out[S.olen++] = '}';
        return 0;
    }
    for (;;) {
        Member m;
        int escaped;
        const uint8_t *key_at = S.p;
        if (*key_at != '"' || S.nmem >= MAX_MEMBERS) {
            return FAIL;
        }
        m.start = (uint32_t)S.olen;
        if (parse_string(&escaped) < 0) {
            return FAIL;
        }
        if (LIKELY(!escaped)) {
            m.key = key_at + 1;
            m.klen = (uint32_t)(S.p - key_at - 2);
        }
        else {
            m.key = decode_key(key_at, &m.klen);
        }
        set_prefix(&m);
        if (S.nmem > first) {
            const Member *prev = &members[S.nmem - 1];
            int c = member_compare(prev, &m);
            if (c == 0) {
                return FAIL; /* a duplicate key */
            }
            sorted &= c < 0;
        }
        skip_space();
        if (*S.p != ':') {
            return FAIL;
        }
        S.p++;
        NEED(1);
        out[S.olen++] = ':';
        skip_space();
        if (parse_value(depth) < 0) {
            return FAIL;
        }
        m.len = (uint32_t)(S.olen - m.start);
        members[S.nmem++] = m;
        skip_space();
        NEED(1);
        if (*S.p == ',') {
            S.p++;
            out[S.olen++] = ',';
            skip_space();
            continue;
        }
        if (*S.p == '}') {
            S.p++;
            break;
        }
        return FAIL;
    }
    if (!sorted && reorder(first) < 0) {
        return FAIL;
    }
    out[S.olen++] = '}'; /* NEED(1) above covers it: the ',' it was for is not written */
    S.nmem = first;
    S.klen = keys_mark;
    return 0;
}

static int
parse_value(int depth)
{
    const uint8_t *p = S.p;
    int escaped;
    switch (*p) {
    case '{':
        return parse_object(depth + 1);
    case '[':
        return parse_array(depth + 1);
    case '"':
        return parse_string(&escaped);
    case 't':
        if (S.end - p >= 4 && memcmp(p, "true", 4) == 0) {
            S.p += 4;
            return write_bytes("true", 4);
        }
        return FAIL;
    case 'f':
        if (S.end - p >= 5 && memcmp(p, "false", 5) == 0) {
            S.p += 5;
            return write_bytes("false", 5);
        }
        return FAIL;
    case 'n':
        if (S.end - p >= 4 && memcmp(p, "null", 4) == 0) {
            S.p += 4;
            return write_bytes("null", 4);
        }
        return FAIL;
    default:
        return parse_number();
    }
}

/* -- the module -------------------------------------------------------------------------------- */

static PyObject *
canonical(PyObject *module, PyObject *line)
{
    const uint8_t *data;
    Py_ssize_t size;
    (void)module;
    if (PyBytes_CheckExact(line)) {
        data = (const uint8_t *)PyBytes_AS_STRING(line);
        size = PyBytes_GET_SIZE(line);
    }
    else if (PyByteArray_CheckExact(line)) {
        data = (const uint8_t *)PyByteArray_AS_STRING(line);
        size = PyByteArray_GET_SIZE(line);
    }
    else {
        Py_RETURN_NONE; /* str, memoryview, ...: the Python path */
    }
    /* Both types keep a NUL byte after their data: every scan below stops at it. */
    if (data[size] != 0) {
        Py_RETURN_NONE; /* not expected */
    }
    S.p = data;
    S.end = data + size;
    S.olen = 0;
    S.nmem = 0;
    S.klen = 0;
    skip_space();
    if (*S.p != '{' || parse_object(1) < 0) {
        Py_RETURN_NONE;
    }
    skip_space();
    if (S.p != S.end) {
        Py_RETURN_NONE; /* trailing content, or a NUL byte inside the text */
    }
    return PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)S.olen);
}

PyDoc_STRVAR(canonical_doc,
"canonical(line, /)\n--\n\n"
"The RFC 8785 bytes of the JSON object in line (bytes or bytearray), or None whenever not\n"
"certain (invalid or unusual input, or any other type): ledger.canonical.canonical_event then\n"
"returns the same bytes or raises EntryError from its Python path.");

static PyMethodDef methods[] = {
    {"canonical", canonical, METH_O, canonical_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ledger._jcs",
    .m_doc = "Compiled fast path of ledger.canonical.canonical_event (RFC 8785).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__jcs(void)
{
    init_tables();
    return PyModule_Create(&module);
}
