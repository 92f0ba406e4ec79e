//go:build ignore

/*
 * (The line above tells the go tool, which runs sdk_test.go in this
 * directory, that this is not cgo source. To a C compiler it is a comment.)
 *
 * edgesync.c - the C SDK for edgesync conflict resolvers: the ABI v1 exports
 * (resolvers/ABI.md), a validating JSON toolkit over byte spans, and the
 * output builder. See edgesync.h for the API.
 */
#include "edgesync.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================ scanning */

/* scan_err records the first problem a scan found. */
typedef struct {
    const char *msg;
    const char *at;
} scan_err;

__attribute__((noinline)) static const char *fail(scan_err *e, const char *at,
                                                  const char *msg) {
    if (e != NULL && e->msg == NULL) {
        e->msg = msg;
        e->at = at;
    }
    return NULL;
}

static inline bool is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && is_ws((unsigned char)*p))
        p++;
    return p;
}

/* trim returns s without the whitespace around it. */
static es_span trim(es_span s) {
    if (s.p == NULL)
        return s;
    const char *p = s.p, *end = s.p + s.n;
    p = skip_ws(p, end);
    while (end > p && is_ws((unsigned char)end[-1]))
        end--;
    return es_span_of(p, (size_t)(end - p));
}

static int hex_val(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* hex4 reads four hex digits at p (the caller checked that they are in
 * bounds): the value, or -1. */
static long hex4(const char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_val((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/*
 * A note on cost. The hub meters a resolver with fuel: every function entry
 * costs the number of instructions in the function, and every iteration of
 * a loop the number of instructions in the loop's body (resolvers/ABI.md),
 * whether they run or not. So the hot loops below are kept small, and rare
 * cases (escapes, fractions, errors) live out of line in their own functions.
 */

/* scan_escape checks the escape sequence at the backslash at p and returns
 * the position after it. */
__attribute__((noinline)) static const char *scan_escape(const char *p, const char *end,
                                                         scan_err *e) {
    if (end - p < 2)
        return fail(e, p, "unterminated string");
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return p + 2;
    case 'u':
        if (end - p < 6 || hex4(p + 2) < 0)
            return fail(e, p + 1, "invalid \\u escape in string");
        return p + 6;
    default:
        return fail(e, p + 1, "invalid escape in string");
    }
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* special8 tells whether one of the 8 bytes of w ends a run of plain string
 * characters: '"', '\' or a control character. Bit tricks on one word
 * ("has a zero byte", "has a byte less than n", both exact as booleans);
 * xor 0x02 turns '"' into 0x20 and keeps control characters below 0x20, so
 * one "less than 0x21" test finds both. */
static inline uint64_t special8(uint64_t w) {
    uint64_t q = w ^ (ONES * 0x02), b = w ^ (ONES * '\\');
    return (((q - ONES * 0x21) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

static inline bool plain(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; }

/* plain_run returns the first byte from p on that is not a plain string
 * character, looking at 8 bytes at a time. (A function of its own, so that
 * the compiler does not merge its loops into the caller's larger one.) */
__attribute__((noinline)) static const char *plain_run(const char *p, const char *end) {
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (special8(w))
            break;
        p += 8;
    }
    while (p < end && plain((unsigned char)*p))
        p++;
    return p;
}

/* scan_string checks the string starting at the quote at p and returns the
 * position after its closing quote. */
static const char *scan_string(const char *p, const char *end, scan_err *e) {
    p++;
    for (;;) {
        p = plain_run(p, end);
        if (p >= end)
            return fail(e, p, "unterminated string");
        if (*p == '"')
            return p + 1;
        if ((unsigned char)*p < 0x20)
            return fail(e, p, "control character in string");
        if ((p = scan_escape(p, end, e)) == NULL)
            return NULL;
    }
}

/* number_tail checks the fraction and exponent of a number, at p. */
__attribute__((noinline)) static const char *number_tail(const char *p, const char *end,
                                                         scan_err *e) {
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit((unsigned char)*p))
            return fail(e, p, "invalid number: no digit after the decimal point");
        while (p < end && is_digit((unsigned char)*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit((unsigned char)*p))
            return fail(e, p, "invalid number: no digit in the exponent");
        while (p < end && is_digit((unsigned char)*p))
            p++;
    }
    return p;
}

/* scan_number checks the number at p:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
__attribute__((noinline)) static const char *scan_number(const char *p, const char *end,
                                                         scan_err *e) {
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        do
            p++;
        while (p < end && is_digit((unsigned char)*p));
    else
        return fail(e, p, "invalid number");
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
        return number_tail(p, end, e);
    return p;
}

/* scan_scalar checks the string, number or literal at p. */
__attribute__((noinline)) static const char *scan_scalar(const char *p, const char *end,
                                                         scan_err *e) {
    const char *lit;
    size_t n;
    switch (*p) {
    case '"':
        return scan_string(p, end, e);
    case 't':
        lit = "true", n = 4;
        break;
    case 'f':
        lit = "false", n = 5;
        break;
    case 'n':
        lit = "null", n = 4;
        break;
    default:
        if (*p == '-' || is_digit((unsigned char)*p))
            return scan_number(p, end, e);
        return fail(e, p, "invalid character at the start of a value");
    }
    if ((size_t)(end - p) < n)
        return fail(e, p, "invalid literal (want true, false or null)");
    for (size_t i = 1; i < n; i++)
        if (p[i] != lit[i])
            return fail(e, p, "invalid literal (want true, false or null)");
    return p + n;
}

/* scan_key checks an object key and the colon after it, at p, and returns
 * the start of the member's value. */
__attribute__((noinline)) static const char *scan_key(const char *p, const char *end,
                                                      scan_err *e) {
    if (p >= end || *p != '"')
        return fail(e, p, "expected a string as object key");
    if ((p = scan_string(p, end, e)) == NULL)
        return NULL;
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return fail(e, p, "expected ':' after an object key");
    return skip_ws(p + 1, end);
}

/* scan_value checks the JSON value that starts at p (no leading
 * whitespace) with arrays and objects nested at most maxdepth deep, and
 * returns the position just after it, or NULL. It is iterative: a stack of
 * the open containers replaces recursion, so that hostile nesting costs
 * ES_MAX_DEPTH bytes of stack, not frames. */
static const char *scan_value(const char *p, const char *end, int maxdepth, scan_err *e) {
    char open[ES_MAX_DEPTH]; /* '{' or '[' for each open container */
    int depth = 0;
    if (maxdepth > ES_MAX_DEPTH)
        maxdepth = ES_MAX_DEPTH;
    for (;;) {
        /* A value starts at p. */
        if (p >= end)
            return fail(e, p, "unexpected end of JSON");
        if (*p == '{' || *p == '[') {
            if (depth >= maxdepth)
                return fail(e, p, "nesting too deep");
            char c = open[depth++] = *p;
            p = skip_ws(p + 1, end);
            if (p >= end || *p != (c == '{' ? '}' : ']')) {
                if (c == '{' && (p = scan_key(p, end, e)) == NULL)
                    return NULL;
                continue; /* the first element or member */
            }
            p++; /* empty */
            depth--;
        } else if ((p = scan_scalar(p, end, e)) == NULL) {
            return NULL;
        }
        /* A value ended at p: close containers up to the next value. */
        for (;;) {
            if (depth == 0)
                return p;
            p = skip_ws(p, end);
            bool obj = open[depth - 1] == '{';
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                if (obj && (p = scan_key(p, end, e)) == NULL)
                    return NULL;
                break;
            }
            if (p >= end || *p != (obj ? '}' : ']'))
                return fail(e, p, p >= end ? "unexpected end of JSON"
                                  : obj    ? "expected ',' or '}' after an object member"
                                           : "expected ',' or ']' after an array element");
            p++;
            depth--;
        }
    }
}

/*
 * Skipping trusted values. Once es_run has validated the input, walking it
 * again (es_member, iterators, es_out_edit on the documents) only needs to
 * find where each value ends: skip_value does that without checking the
 * grammar, looking at 8 bytes at a time for the few that matter. It is used
 * only for spans inside the validated input (trusted()); it stays within
 * its span whatever the bytes are.
 */

static const char *trusted_lo, *trusted_hi; /* the validated input of this call */

static bool trusted(const char *p, const char *end) {
    return trusted_lo != NULL && (uintptr_t)p >= (uintptr_t)trusted_lo &&
           (uintptr_t)end <= (uintptr_t)trusted_hi;
}

/* haszero8 tells whether one of the 8 bytes of w is zero (exact as a
 * boolean); has8(w, c) whether one of them is c. */
static inline uint64_t haszero8(uint64_t w) { return (w - ONES) & ~w & HIGHS; }
#define has8(w, c) haszero8((w) ^ (ONES * (unsigned char)(c)))

/* skip_string returns the position after the string whose opening quote is
 * at p (a trusted string: only quotes and backslashes matter). */
/* quote_run returns the first quote or backslash from p on (or end). */
__attribute__((noinline)) static const char *quote_run(const char *p, const char *end) {
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (has8(w, '"') | has8(w, '\\'))
            break;
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\')
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end) {
    p++;
    while (p < end) {
        p = quote_run(p, end);
        if (p >= end)
            break;
        if (*p == '"')
            return p + 1;
        p += 2; /* an escape: the rest of \uXXXX is plain */
    }
    return end;
}

/* skip_value returns the position after the trusted value at p. */
__attribute__((noinline)) static const char *skip_value(const char *p, const char *end) {
    if (p >= end)
        return end;
    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') { /* a number or a literal */
        while (p < end && *p != ',' && *p != ']' && *p != '}' && !is_ws((unsigned char)*p))
            p++;
        return p;
    }
    long depth = 0;
    while (p < end) {
        /* Jump over bytes that are neither quotes nor brackets: '[' | 0x20
         * is '{' and ']' | 0x20 is '}', and no other byte maps to those. */
        while (end - p >= 8) {
            uint64_t w, l;
            memcpy(&w, p, 8);
            l = w | ONES * 0x20;
            if (has8(w, '"') | has8(l, '{') | has8(l, '}'))
                break;
            p += 8;
        }
        char c = *p;
        if (c == '"') {
            p = skip_string(p, end);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return end;
}

/* ============================================================== spans */

es_span es_cstr(const char *s) { return es_span_of(s, s ? strlen(s) : 0); }

es_type es_type_of(es_span v) {
    v = trim(v);
    if (v.p == NULL || v.n == 0)
        return ES_INVALID;
    switch (v.p[0]) {
    case 'n': return ES_NULL;
    case 'f': return ES_FALSE;
    case 't': return ES_TRUE;
    case '"': return ES_STRING;
    case '[': return ES_ARRAY;
    case '{': return ES_OBJECT;
    default:
        return v.p[0] == '-' || is_digit((unsigned char)v.p[0]) ? ES_NUMBER : ES_INVALID;
    }
}

bool es_is_null(es_span v) {
    v = trim(v);
    return v.p == NULL || (v.n == 4 && memcmp(v.p, "null", 4) == 0);
}

int es_parse(es_span text, es_span *value, es_error *err) {
    scan_err e = {0};
    const char *start = text.p ? text.p : "";
    const char *end = start + (text.p ? text.n : 0);
    const char *p = skip_ws(start, end), *q = NULL;
    if (p >= end)
        fail(&e, p, "empty: no JSON value");
    else if ((q = scan_value(p, end, ES_MAX_DEPTH, &e)) != NULL && skip_ws(q, end) != end)
        fail(&e, skip_ws(q, end), "data after the JSON value");
    if (e.msg != NULL) {
        if (err != NULL) {
            err->msg = e.msg;
            err->offset = (size_t)(e.at - start);
        }
        return -1;
    }
    if (value != NULL)
        *value = es_span_of(p, (size_t)(q - p));
    return 0;
}

bool es_valid(es_span text) { return es_parse(text, NULL, NULL) == 0; }

/* ================================================= objects and arrays */

enum { IT_FIRST, IT_NEXT, IT_DONE, IT_ERROR };

static int iter_begin(es_iter *it, es_span v, char open) {
    v = trim(v);
    it->state = IT_ERROR;
    it->p = it->end = NULL;
    it->fast = 0;
    if (v.p == NULL || v.n == 0 || v.p[0] != open)
        return -1;
    it->p = v.p + 1;
    it->end = v.p + v.n;
    it->state = IT_FIRST;
    it->fast = trusted(v.p, it->end);
    return 0;
}

/* next_value returns the end of the value at p in it: skipped if trusted,
 * checked otherwise; NULL if it is not a value. */
static const char *next_value(const es_iter *it, const char *p) {
    if (!it->fast)
        return scan_value(p, it->end, ES_MAX_DEPTH - 1, NULL);
    const char *q = skip_value(p, it->end);
    return q > p ? q : NULL;
}

/* iter_step moves past the separator before the next item: 1 if there is
 * one (it->p at its start), 0 at the closing bracket, -1 on error. */
static int iter_step(es_iter *it, char close) {
    if (it->state == IT_DONE)
        return 0;
    if (it->state == IT_ERROR)
        return -1;
    const char *p = skip_ws(it->p, it->end);
    if (p < it->end && *p == close) {
        /* Only the end of the span may follow the closing bracket. */
        it->state = skip_ws(p + 1, it->end) == it->end ? IT_DONE : IT_ERROR;
        return it->state == IT_DONE ? 0 : -1;
    }
    if (it->state == IT_NEXT) {
        if (p >= it->end || *p != ',') {
            it->state = IT_ERROR;
            return -1;
        }
        p = skip_ws(p + 1, it->end);
    }
    it->p = p;
    return 1;
}

int es_array_begin(es_iter *it, es_span arr) { return iter_begin(it, arr, '['); }

int es_array_next(es_iter *it, es_span *elem) {
    int r = iter_step(it, ']');
    if (r <= 0)
        return r;
    const char *q = next_value(it, it->p);
    if (q == NULL) {
        it->state = IT_ERROR;
        return -1;
    }
    *elem = es_span_of(it->p, (size_t)(q - it->p));
    it->p = q;
    it->state = IT_NEXT;
    return 1;
}

int es_object_begin(es_iter *it, es_span obj) { return iter_begin(it, obj, '{'); }

int es_object_next(es_iter *it, es_span *key, es_span *val) {
    int r = iter_step(it, '}');
    if (r <= 0)
        return r;
    const char *p = it->p, *end = it->end, *k = p, *q;
    if (p >= end || *p != '"')
        goto bad;
    if ((p = it->fast ? skip_string(p, end) : scan_string(p, end, NULL)) == NULL)
        goto bad;
    *key = es_span_of(k, (size_t)(p - k));
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        goto bad;
    p = skip_ws(p + 1, end);
    if ((q = next_value(it, p)) == NULL)
        goto bad;
    *val = es_span_of(p, (size_t)(q - p));
    it->p = q;
    it->state = IT_NEXT;
    return 1;
bad:
    it->state = IT_ERROR;
    return -1;
}

long es_count(es_span v) {
    es_iter it;
    es_span a, b;
    long n = 0;
    int r;
    switch (es_type_of(v)) {
    case ES_ARRAY:
        es_array_begin(&it, v);
        while ((r = es_array_next(&it, &a)) == 1)
            n++;
        break;
    case ES_OBJECT:
        es_object_begin(&it, v);
        while ((r = es_object_next(&it, &a, &b)) == 1)
            n++;
        break;
    default:
        return -1;
    }
    return r < 0 ? -1 : n;
}

int es_member_n(es_span obj, const char *key, size_t keylen, es_span *val) {
    es_iter it;
    es_span k, v;
    int r, found = 0;
    if (es_object_begin(&it, obj) < 0)
        return -1;
    while ((r = es_object_next(&it, &k, &v)) == 1) {
        /* A cheap filter first: a key's text is at least as long as the
         * key, and exactly as long only without escapes (es_str_eq_n). */
        size_t raw = k.n - 2;
        if (raw < keylen || (raw == keylen && keylen > 0 && k.p[1] != key[0]))
            continue;
        if (es_str_eq_n(k, key, keylen)) {
            *val = v;
            found = 1; /* keep going: the last duplicate wins */
        }
    }
    return r < 0 ? -1 : found;
}

/* ============================================================= strings */

/* utf8_put encodes the code point cp into b and returns its length. */
static int utf8_put(char *b, uint32_t cp) {
    if (cp < 0x80) {
        b[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | cp >> 18);
    b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* dec_next decodes the next character of a string body at *pp into b: the
 * number of bytes (1 to 4), 0 at the closing quote (*pp then after it), or
 * -1 if the string is malformed. Surrogates are decoded as encoding/json
 * does: a valid pair is one character, anything else U+FFFD. */
static int dec_next(const char **pp, const char *end, char b[4]) {
    const char *p = *pp;
    if (p >= end)
        return -1;
    unsigned char c = (unsigned char)*p;
    if (c == '"') {
        *pp = p + 1;
        return 0;
    }
    if (c < 0x20)
        return -1;
    if (c != '\\') {
        b[0] = (char)c;
        *pp = p + 1;
        return 1;
    }
    if (end - p < 2)
        return -1;
    switch (p[1]) {
    case '"': b[0] = '"'; break;
    case '\\': b[0] = '\\'; break;
    case '/': b[0] = '/'; break;
    case 'b': b[0] = '\b'; break;
    case 'f': b[0] = '\f'; break;
    case 'n': b[0] = '\n'; break;
    case 'r': b[0] = '\r'; break;
    case 't': b[0] = '\t'; break;
    case 'u': {
        long cp;
        if (end - p < 6 || (cp = hex4(p + 2)) < 0)
            return -1;
        p += 6;
        if (cp >= 0xD800 && cp < 0xDC00) {
            long lo;
            if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && (lo = hex4(p + 2)) >= 0xDC00 &&
                lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else {
                cp = 0xFFFD;
            }
        } else if (cp >= 0xDC00 && cp < 0xE000) {
            cp = 0xFFFD;
        }
        *pp = p;
        return utf8_put(b, (uint32_t)cp);
    }
    default:
        return -1;
    }
    *pp = p + 2;
    return 1;
}

/* str_body returns the position after the opening quote of the string s,
 * setting *end to the end of s, or NULL if s does not start with a quote. */
static const char *str_body(es_span s, const char **end) {
    s = trim(s);
    if (s.p == NULL || s.n < 2 || s.p[0] != '"')
        return NULL;
    *end = s.p + s.n;
    return s.p + 1;
}

bool es_str_eq_n(es_span s, const char *want, size_t n) {
    const char *end, *p = str_body(s, &end);
    if (p == NULL)
        return false;
    /* An escape is longer than what it stands for, so the text between the
     * quotes is at least as long as the string, and exactly as long only
     * without escapes: then the bytes are the string. */
    size_t raw = (size_t)(end - p) - 1;
    if (raw < n)
        return false;
    if (raw == n) {
        size_t i = 0;
        while (i < n && p[i] == want[i] && plain((unsigned char)p[i]))
            i++;
        return i == n && end[-1] == '"';
    }
    size_t i = 0;
    char b[4];
    int k;
    while ((k = dec_next(&p, end, b)) > 0) {
        if ((size_t)k > n - i || memcmp(b, want + i, (size_t)k) != 0)
            return false;
        i += (size_t)k;
    }
    return k == 0 && p == end && i == n;
}

long es_str_decode(es_span s, char *dst, size_t cap) {
    const char *end, *p = str_body(s, &end);
    if (p == NULL)
        return -1;
    size_t n = 0;
    char b[4];
    int k;
    while ((k = dec_next(&p, end, b)) > 0) {
        for (int j = 0; j < k; j++, n++)
            if (n < cap)
                dst[n] = b[j];
    }
    if (k < 0 || p != end)
        return -1;
    return (long)n;
}

/* ============================================================= scalars */

/* number_span returns v trimmed if it is exactly one valid number. */
static bool number_span(es_span v, es_span *num) {
    v = trim(v);
    if (v.p == NULL || v.n == 0)
        return false;
    const char *q = scan_number(v.p, v.p + v.n, NULL);
    if (q != v.p + v.n)
        return false;
    *num = v;
    return true;
}

int es_int64(es_span v, int64_t *out) {
    es_span s;
    if (!number_span(v, &s))
        return -1;
    const char *p = s.p, *end = s.p + s.n;
    bool neg = *p == '-';
    if (neg)
        p++;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, m = 0;
    for (; p < end; p++) {
        if (!is_digit((unsigned char)*p))
            return -1; /* a fraction or an exponent */
        unsigned d = (unsigned)(*p - '0');
        if (m > (limit - d) / 10)
            return -1;
        m = m * 10 + d;
    }
    *out = neg ? (int64_t)(0 - m) : (int64_t)m;
    return 0;
}

int es_double(es_span v, double *out) {
    es_span s;
    if (!number_span(v, &s))
        return -1;
    /* strtod wants a NUL-terminated string and may read past a number. */
    char small[64], *buf = small;
    if (s.n >= sizeof small && (buf = malloc(s.n + 1)) == NULL)
        return -1;
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    errno = 0;
    double d = strtod(buf, NULL);
    int bad = errno == ERANGE && isinf(d);
    if (buf != small)
        free(buf);
    if (bad)
        return -1; /* out of range, as encoding/json says */
    *out = d;
    return 0;
}

int es_bool(es_span v, bool *out) {
    v = trim(v);
    if (v.n == 4 && memcmp(v.p, "true", 4) == 0)
        *out = true;
    else if (v.n == 5 && memcmp(v.p, "false", 5) == 0)
        *out = false;
    else
        return -1;
    return 0;
}

size_t es_fmt_int(char *buf, int64_t v) {
    char tmp[20];
    size_t n = 0, i = 0;
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m != 0);
    if (v < 0)
        buf[i++] = '-';
    while (n > 0)
        buf[i++] = tmp[--n];
    return i;
}

/* ======================================================= compact text */

/* compact_rd reads the bytes of a value's compact text: the whitespace
 * outside strings removed, everything else as is (json.Compact). */
typedef struct {
    const char *p, *end;
    bool in_str, esc;
} compact_rd;

static int compact_next(compact_rd *r) {
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p++;
        if (r->in_str) {
            if (r->esc)
                r->esc = false;
            else if (c == '\\')
                r->esc = true;
            else if (c == '"')
                r->in_str = false;
            return c;
        }
        if (is_ws(c))
            continue;
        if (c == '"')
            r->in_str = true;
        return c;
    }
    return -1;
}

static compact_rd compact_of(es_span v) {
    compact_rd r = {v.p, v.p ? v.p + v.n : NULL, false, false};
    return r;
}

bool es_equal_compact(es_span a, es_span b) {
    if (a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0))
        return true;
    compact_rd ra = compact_of(a), rb = compact_of(b);
    for (;;) {
        int ca = compact_next(&ra), cb = compact_next(&rb);
        if (ca != cb)
            return false;
        if (ca < 0)
            return true;
    }
}

size_t es_compact(es_span v, char *dst) {
    compact_rd r = compact_of(v);
    size_t n = 0;
    int c;
    while ((c = compact_next(&r)) >= 0)
        dst[n++] = (char)c;
    return n;
}

uint64_t es_hash_compact(es_span v) {
    uint64_t h = 0xcbf29ce484222325ull;
    compact_rd r = compact_of(v);
    int c;
    while ((c = compact_next(&r)) >= 0) {
        h ^= (unsigned char)c;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ============================================================== arena */

/* The scratch arena is a list of blocks, newest first. At the end of a
 * call every block is released except one of the default size, kept for
 * the next call. */
typedef struct block {
    struct block *next;
    size_t cap, used;
} block;

#define ALIGN _Alignof(max_align_t)
#define BLOCK_HDR ((sizeof(block) + ALIGN - 1) & ~(size_t)(ALIGN - 1))
#define BLOCK_SIZE ((size_t)64 << 10)

static block *arena;

void *es_alloc(size_t n) {
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (arena == NULL || arena->cap - arena->used < n) {
        size_t cap = n > BLOCK_SIZE ? n : BLOCK_SIZE;
        block *b = malloc(BLOCK_HDR + cap);
        if (b == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = arena;
        arena = b;
    }
    void *p = (char *)arena + BLOCK_HDR + arena->used;
    arena->used += n;
    return p;
}

static void arena_reset(void) {
    block *keep = NULL;
    while (arena != NULL) {
        block *b = arena;
        arena = b->next;
        if (keep == NULL && b->cap == BLOCK_SIZE) {
            keep = b;
        } else {
            free(b);
        }
    }
    if (keep != NULL) {
        keep->next = NULL;
        keep->used = 0;
    }
    arena = keep;
}

/* ============================================================== input */

static const char null_text[] = "null", empty_array[] = "[]";

/* The members of the input es_parse_input knows. */
enum { K_OTHER, K_KIND, K_CONTAINER, K_ID, K_INCOMING, K_EXISTING, K_BASE, K_TOMBSTONE, K_CONFLICTING };

static const struct {
    const char *name;
    size_t len;
} input_keys[] = {
    {"", 0},        {"kind", 4}, {"container", 9},    {"id", 2},           {"incoming", 8},
    {"existing", 8}, {"base", 4}, {"isTombstone", 11}, {"conflicting", 11},
};

/* input_key says which member of the input the key k (a JSON string) is. */
static int input_key(es_span k) {
    size_t raw = k.n - 2; /* the text between the quotes */
    for (int i = K_KIND; i <= K_CONFLICTING; i++) {
        /* Cheap filters first: without escapes, the text is the name. */
        if (raw < input_keys[i].len || (raw == input_keys[i].len && k.p[1] != input_keys[i].name[0]))
            continue;
        if (es_str_eq_n(k, input_keys[i].name, input_keys[i].len))
            return i;
    }
    return K_OTHER;
}

int es_parse_input(es_span raw, es_input *in, es_error *err) {
    memset(in, 0, sizeof *in);
    in->raw = raw;
    in->incoming = in->existing = in->base = es_span_of(null_text, 4);
    in->conflicting = es_span_of(empty_array, 2);

    /* One pass: iterating the members validates each of them. */
    const char *msg = NULL;
    es_iter it;
    es_span k, v;
    int r;
    if (es_object_begin(&it, raw) < 0)
        goto invalid;
    while ((r = es_object_next(&it, &k, &v)) == 1) {
        es_type t = es_type_of(v);
        int key = input_key(k);
        switch (key) {
        case K_KIND:
        case K_CONTAINER:
        case K_ID:
            if (t != ES_STRING && t != ES_NULL) {
                msg = "kind, container and id must be strings";
                goto bad;
            }
            es_span *dst = key == K_KIND ? &in->kind : key == K_CONTAINER ? &in->container : &in->id;
            *dst = t == ES_STRING ? v : es_span_of(NULL, 0);
            break;
        case K_INCOMING:
            in->incoming = v;
            break;
        case K_EXISTING:
            in->existing = v;
            break;
        case K_BASE:
            in->base = v;
            break;
        case K_TOMBSTONE:
            if (t == ES_NULL)
                in->is_tombstone = false;
            else if (es_bool(v, &in->is_tombstone) < 0) {
                msg = "isTombstone must be a boolean";
                goto bad;
            }
            break;
        case K_CONFLICTING:
            if (t == ES_NULL)
                in->conflicting = es_span_of(empty_array, 2);
            else if (t == ES_ARRAY)
                in->conflicting = v;
            else {
                msg = "conflicting must be an array";
                goto bad;
            }
            break;
        }
    }
    if (r < 0)
        goto invalid;
    in->incoming_deleted = es_is_null(in->incoming);
    in->existing_deleted = es_is_null(in->existing);
    in->has_base = !es_is_null(in->base);
    return 0;
invalid: /* es_parse says what is wrong, or it is valid JSON but no object */
    if (es_parse(raw, &v, err) < 0)
        return -1;
    msg = "the input is not a JSON object";
bad:
    if (err != NULL) {
        err->msg = msg;
        err->offset = (size_t)(v.p - raw.p);
    }
    return -1;
}

/* ============================================================= output */

enum { ST_EMPTY, ST_TOP, ST_DOC, ST_REASON };

struct es_output {
    char *buf;
    size_t len, cap;
    const char *err;  /* the first builder error */
    int state;        /* ST_*: what the next bytes belong to */
    bool merge;       /* the action is merge */
    bool has_doc;     /* es_out_document was called */
    bool reason_full; /* the reason reached ES_MAX_REASON */
    size_t doc_start, doc_end;
    size_t reason_len; /* decoded bytes of the reason so far */
};

static int set_err(es_output *o, const char *msg) {
    if (o->err == NULL)
        o->err = msg;
    return -1;
}

/* reserve makes room for n more bytes. */
static int reserve(es_output *o, size_t n) {
    if (o->err != NULL)
        return -1;
    if (n <= o->cap - o->len)
        return 0;
    if (n > SIZE_MAX / 4 - o->len)
        return set_err(o, "output too large");
    size_t cap = o->cap ? o->cap : 256;
    while (cap - o->len < n)
        cap *= 2;
    /* malloc and memcpy rather than realloc: the compiler turns this memcpy
     * into one memory.copy, cheaper in fuel than libc's copy loop. */
    char *b = malloc(cap);
    if (b == NULL)
        return set_err(o, "out of memory for the output");
    if (o->len > 0)
        memcpy(b, o->buf, o->len);
    free(o->buf);
    o->buf = b;
    o->cap = cap;
    return 0;
}

/* put appends bytes wherever the builder is. */
static int put(es_output *o, const char *p, size_t n) {
    if (reserve(o, n) < 0)
        return -1;
    if (n > 0)
        memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

static int put_str(es_output *o, const char *s) { return put(o, s, strlen(s)); }

/* in_doc checks that a document writer is called inside the document. */
static int in_doc(es_output *o) {
    if (o->err != NULL)
        return -1;
    if (o->state != ST_DOC)
        return set_err(o, "a document writer was called outside the document "
                          "(es_out_action(out, \"merge\") and es_out_document come first)");
    return 0;
}

/* utf8_len returns the length of the valid UTF-8 sequence at s (n bytes
 * available), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* put_escaped appends s as the inside of a JSON string: '"', '\' and control
 * characters escaped, invalid UTF-8 replaced by U+FFFD. With budget != NULL
 * it stops before the decoded length would exceed *budget (and lowers it):
 * returns 1 if it stopped early, 0 if all of s was written, -1 on error. */
static int put_escaped(es_output *o, const char *s, size_t n, size_t *budget) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t run = i; /* copy runs of plain ASCII in one go */
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) {
            size_t take = run - i;
            if (budget != NULL && take > *budget)
                take = *budget;
            if (put(o, s + i, take) < 0)
                return -1;
            if (budget != NULL)
                *budget -= take;
            i += take;
            if (i < run)
                return 1;
            continue;
        }
        /* One character: escaped, copied, or replaced. consumed is its
         * length in s, decoded its length in the decoded string. */
        unsigned char c = u[i];
        char esc[6];
        const char *w = esc;
        size_t wn, consumed, decoded;
        if (c < 0x80) {
            consumed = decoded = 1;
            wn = 2;
            esc[0] = '\\';
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                wn = 6;
            }
        } else if ((consumed = utf8_len(u + i, n - i)) != 0) {
            w = s + i;
            wn = decoded = consumed;
        } else {
            w = "\xEF\xBF\xBD"; /* U+FFFD for one bad byte */
            wn = decoded = 3;
            consumed = 1;
        }
        if (budget != NULL && decoded > *budget)
            return 1;
        if (put(o, w, wn) < 0)
            return -1;
        if (budget != NULL)
            *budget -= decoded;
        i += consumed;
    }
    return 0;
}

int es_out_action(es_output *o, const char *action) {
    static const char *const known[] = {"incoming", "existing", "merge", "delete", "defer"};
    if (o->err != NULL)
        return -1;
    if (o->state != ST_EMPTY)
        return set_err(o, "es_out_action was called twice");
    size_t i;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(action, known[i]) == 0)
            break;
    if (i == sizeof known / sizeof known[0])
        return set_err(o, "unknown action (want incoming, existing, merge, delete or defer)");
    o->merge = i == 2;
    o->state = ST_TOP;
    if (put_str(o, "{\"action\":\"") < 0 || put_str(o, action) < 0)
        return -1;
    return put(o, "\"", 1);
}

int es_out_document(es_output *o) {
    if (o->err != NULL)
        return -1;
    if (!o->merge)
        return set_err(o, "a document goes only with the action merge, set first");
    if (o->has_doc || o->state != ST_TOP)
        return set_err(o, "es_out_document must come once, before the reason");
    if (put_str(o, ",\"document\":") < 0)
        return -1;
    o->has_doc = true;
    o->state = ST_DOC;
    o->doc_start = o->len;
    return 0;
}

int es_out_raw(es_output *o, const char *p, size_t n) {
    return in_doc(o) < 0 ? -1 : put(o, p, n);
}

int es_out_span(es_output *o, es_span v) { return es_out_raw(o, v.p, v.p ? v.n : 0); }

int es_out_char(es_output *o, char c) { return es_out_raw(o, &c, 1); }

int es_out_compact(es_output *o, es_span v) {
    if (in_doc(o) < 0 || reserve(o, v.n) < 0)
        return -1;
    o->len += es_compact(v, o->buf + o->len); /* never more than v.n bytes */
    return 0;
}

int es_out_string(es_output *o, const char *s, size_t n) {
    if (in_doc(o) < 0 || put(o, "\"", 1) < 0 || put_escaped(o, s, n, NULL) < 0)
        return -1;
    return put(o, "\"", 1);
}

int es_out_cstring(es_output *o, const char *s) { return es_out_string(o, s, strlen(s)); }

int es_out_int(es_output *o, int64_t v) {
    char b[21];
    return es_out_raw(o, b, es_fmt_int(b, v));
}

/* put_value writes the value of a copied (e == NULL: v) or edited member. */
static int put_value(es_output *o, const es_edit *e, es_span v) {
    if (e == NULL)
        return put(o, v.p, v.n);
    if (e->write == NULL)
        return put(o, e->value.p, e->value.n);
    if (e->write(o, e->arg) != 0)
        return set_err(o, "es_out_edit: the value writer failed");
    return 0;
}

int es_out_edit(es_output *o, es_span obj, const es_edit *edits, size_t n) {
    bool small[32], *done = small;
    if (in_doc(o) < 0)
        return -1;
    if (n > sizeof small / sizeof small[0] && (done = es_alloc(n * sizeof *done)) == NULL)
        return set_err(o, "out of memory");
    memset(done, 0, n * sizeof *done);

    es_iter it;
    es_span k, v;
    int r, members = 0;
    if (es_object_begin(&it, obj) < 0)
        return set_err(o, "es_out_edit: the document to copy is not a JSON object");
    if (put(o, "{", 1) < 0)
        return -1;
    while ((r = es_object_next(&it, &k, &v)) == 1) {
        const es_edit *e = NULL;
        size_t i;
        for (i = 0; i < n; i++)
            if (es_str_eq(k, edits[i].key)) {
                e = &edits[i];
                break;
            }
        if (e != NULL) {
            if (done[i])
                continue; /* a later duplicate of an edited member */
            done[i] = true;
            if (e->write == NULL && e->value.p == NULL)
                continue; /* removed */
        }
        if ((members++ > 0 && put(o, ",", 1) < 0) || put(o, k.p, k.n) < 0 ||
            put(o, ":", 1) < 0 || put_value(o, e, v) < 0)
            return -1;
    }
    if (r < 0)
        return set_err(o, "es_out_edit: the document to copy is not a valid JSON object");
    for (size_t i = 0; i < n; i++) {
        const es_edit *e = &edits[i];
        if (done[i] || (e->write == NULL && e->value.p == NULL))
            continue;
        if (members++ > 0 && put(o, ",", 1) < 0)
            return -1;
        if (es_out_cstring(o, e->key) < 0 || put(o, ":", 1) < 0 || put_value(o, e, v) < 0)
            return -1;
    }
    return put(o, "}", 1);
}

int es_out_with(es_output *o, es_span obj, const char *key, es_span value) {
    es_edit e = {key, value, NULL, NULL};
    if (value.p == NULL)
        return set_err(o, "es_out_with: no value (use es_out_without to remove a member)");
    return es_out_edit(o, obj, &e, 1);
}

int es_out_without(es_output *o, es_span obj, const char *key) {
    es_edit e = {key, {NULL, 0}, NULL, NULL};
    return es_out_edit(o, obj, &e, 1);
}

int es_out_reason_n(es_output *o, const char *text, size_t n) {
    if (o->err != NULL)
        return -1;
    if (o->state == ST_EMPTY)
        return set_err(o, "a reason was written before the action");
    if (o->state == ST_DOC) { /* the reason ends the document */
        o->doc_end = o->len;
        o->state = ST_TOP;
    }
    if (o->state == ST_TOP) {
        if (put_str(o, ",\"reason\":\"") < 0)
            return -1;
        o->state = ST_REASON;
    }
    if (o->reason_full)
        return 0;
    size_t budget = ES_MAX_REASON - o->reason_len;
    int r = put_escaped(o, text, n, &budget);
    if (r < 0)
        return -1;
    o->reason_len = ES_MAX_REASON - budget;
    o->reason_full = r == 1;
    return 0;
}

int es_out_reason(es_output *o, const char *text) { return es_out_reason_n(o, text, strlen(text)); }

int es_out_reason_int(es_output *o, int64_t v) {
    char b[21];
    return es_out_reason_n(o, b, es_fmt_int(b, v));
}

int es_out_defer(es_output *o, const char *reason) {
    if (es_out_action(o, "defer") < 0)
        return -1;
    return es_out_reason(o, reason);
}

const char *es_out_error(const es_output *o) { return o->err; }

static void out_reset(es_output *o) {
    char *buf = o->buf;
    size_t cap = o->cap;
    memset(o, 0, sizeof *o);
    o->buf = buf;
    o->cap = cap;
}

/* out_close ends the output object. */
static int out_close(es_output *o) {
    if (o->state == ST_REASON && put(o, "\"", 1) < 0)
        return -1;
    return put(o, "}", 1);
}

/* out_defer replaces the output by a defer with the reason a + b (b may be
 * NULL), followed by label and num when label is not NULL. */
static void out_defer(es_output *o, const char *a, const char *b, const char *label, long num) {
    out_reset(o);
    es_out_action(o, "defer");
    es_out_reason(o, a);
    if (b != NULL)
        es_out_reason(o, b);
    if (label != NULL) {
        es_out_reason(o, label);
        es_out_reason_int(o, num);
    }
    out_close(o);
}

/* finish checks what es_resolve wrote (it returned rc) and closes it, or
 * replaces it by a defer that says what is wrong. */
static void finish(es_output *o, int rc) {
    if (o->err == NULL && rc == 0 && o->state != ST_EMPTY) {
        if (o->state == ST_DOC)
            o->doc_end = o->len;
        if (o->merge && !o->has_doc) {
            out_defer(o, "resolver failed: the action merge needs a document", NULL, NULL, 0);
            return;
        }
        if (o->has_doc) {
            es_span doc = es_span_of(o->buf + o->doc_start, o->doc_end - o->doc_start), v;
            es_error de = {0};
            if (es_parse(doc, &v, &de) < 0) {
                out_defer(o, "resolver failed: its document is not valid JSON: ", de.msg,
                          " at byte ", (long)de.offset);
                return;
            }
            if (es_type_of(v) != ES_OBJECT) {
                out_defer(o, "resolver failed: its document is not a JSON object", NULL, NULL, 0);
                return;
            }
        }
        if (out_close(o) == 0)
            return;
    }
    if (o->err != NULL)
        out_defer(o, "resolver failed: ", o->err, NULL, 0); /* o->err is a static string */
    else if (rc != 0)
        out_defer(o, "resolver failed: es_resolve returned ", NULL, "", rc);
    else
        out_defer(o, "resolver failed: es_resolve set no action", NULL, NULL, 0);
}

static es_output output;

const char *es_run(const char *input, size_t n, size_t *out_n) {
    static const char oom[] = "{\"action\":\"defer\",\"reason\":\"resolver failed: out of memory\"}";
    es_input in;
    es_error e = {0};
    out_reset(&output);
    if (es_parse_input(es_span_of(input ? input : "", input ? n : 0), &in, &e) < 0) {
        out_defer(&output, "resolver failed: its input is not valid: ", e.msg, " at byte ",
                  (long)e.offset);
    } else {
        trusted_lo = in.raw.p; /* validated: walk it fast */
        trusted_hi = in.raw.p + in.raw.n;
        int rc = es_resolve(&in, &output);
        trusted_lo = trusted_hi = NULL;
        finish(&output, rc);
    }
    arena_reset();
    if (output.err != NULL) { /* even the defer could not be written */
        *out_n = sizeof oom - 1;
        return oom;
    }
    *out_n = output.len;
    return output.buf;
}

/* ========================================================= the exports */

#ifdef __wasm__

#define EXPORT(name) __attribute__((export_name(name)))

/* The input buffer: grow-only, reused for every call. */
static char *in_buf;
static size_t in_cap;

EXPORT("edgesync_abi_v1") void edgesync_abi_v1(void) {}

EXPORT("edgesync_input") int32_t edgesync_input(int32_t len) {
    if (len < 0)
        return 0;
    if ((size_t)len > in_cap || in_buf == NULL) {
        size_t cap = ((size_t)len + 4095) & ~(size_t)4095; /* whole 4 KiB */
        if (cap == 0)
            cap = 4096;
        free(in_buf);
        in_cap = 0;
        if ((in_buf = malloc(cap)) == NULL)
            return 0;
        in_cap = cap;
    }
    return (int32_t)(uintptr_t)in_buf;
}

EXPORT("edgesync_resolve") int64_t edgesync_resolve(int32_t len) {
    size_t n = len < 0 || (size_t)len > in_cap ? 0 : (size_t)len, out_n;
    const char *out = es_run(in_buf, n, &out_n);
    return (int64_t)((uint64_t)(uintptr_t)out << 32 | (uint32_t)out_n);
}

#endif /* __wasm__ */
