//go:build ignore

/*
 * (The line above tells the go tool, which runs sdk_test.go in this
 * directory, that this is not cgo source. To a C compiler it is a comment.)
 *
 * sdk_test.c - native unit tests of the C SDK (JSON toolkit, input parsing,
 * output builder, es_run). Built and run by sdk_test.go:
 *
 *     gcc -std=c11 -Wall -Wextra -fsanitize=address,undefined \
 *         edgesync.c sdk_test.c -o sdk_test && ./sdk_test
 *
 * Besides the checks, the binary has modes for the Go test's differential
 * tests against encoding/json (records on stdin, see es_test.h): "valid"
 * (one byte '1' or '0' per record), "compact" and "decode" (a record per
 * input: the compact text / the decoded string, or length 0xffffffff when
 * the input is invalid), and "run" (es_run with the resolver below).
 */
#define ES_TEST_MODES
#include "es_test.h"

#include <stdint.h>

/* ------------------------------------------------- the resolver under test */

/* hook is what es_resolve does in a test; NULL means default_resolve. */
static int (*hook)(const es_input *in, es_output *out);

/* walk writes v again by walking it with the iterators (compacted keys
 * and scalars kept as they are): in es_run, over the validated input, it
 * exercises the fast skipping of trusted values. */
static int walk(es_output *out, es_span v) {
    es_iter it;
    es_span k, e;
    int r, n = 0;
    switch (es_type_of(v)) {
    case ES_OBJECT:
        if (es_object_begin(&it, v) < 0 || es_out_char(out, '{') < 0)
            return -1;
        while ((r = es_object_next(&it, &k, &e)) == 1)
            if ((n++ > 0 && es_out_char(out, ',') < 0) || es_out_span(out, k) < 0 ||
                es_out_char(out, ':') < 0 || walk(out, e) < 0)
                return -1;
        return r < 0 ? -1 : es_out_char(out, '}');
    case ES_ARRAY:
        if (es_array_begin(&it, v) < 0 || es_out_char(out, '[') < 0)
            return -1;
        while ((r = es_array_next(&it, &e)) == 1)
            if ((n++ > 0 && es_out_char(out, ',') < 0) || walk(out, e) < 0)
                return -1;
        return r < 0 ? -1 : es_out_char(out, ']');
    default:
        return es_out_span(out, v);
    }
}

static int write_walk(es_output *out, void *arg) { return walk(out, *(es_span *)arg); }

/* default_resolve (the "run" mode) merges existing with "seen": true and
 * "walk": existing walked again (see walk), and gives the decoded id
 * (truncated to 40 bytes, maybe mid-character) as the reason. */
static int default_resolve(const es_input *in, es_output *out) {
    if (es_type_of(in->existing) != ES_OBJECT)
        return es_out_defer(out, "existing is not an object");
    char id[40];
    long n = es_str_decode(in->id, id, sizeof id);
    es_span existing = in->existing;
    es_edit edits[] = {{"seen", {"true", 4}, NULL, NULL}, {"walk", {NULL, 0}, write_walk, &existing}};
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_edit(out, in->existing, edits, 2) || es_out_reason(out, "id ") ||
           (n >= 0 && es_out_reason_n(out, id, n < 40 ? (size_t)n : 40));
}

int es_resolve(const es_input *in, es_output *out) {
    return hook != NULL ? hook(in, out) : default_resolve(in, out);
}

/* --------------------------------------------------------------- helpers */

/* parse runs es_parse on an exact-size heap copy of s. */
static int parse_n(const char *s, size_t n, es_span *v, es_error *err) {
    char *c = es_test_copy(s, n);
    es_span tmp;
    int r = es_parse(es_span_of(c, n), &tmp, err);
    if (v != NULL && r == 0)
        *v = es_span_of(s + (tmp.p - c), tmp.n);
    free(c);
    return r;
}

static int parse(const char *s) { return parse_n(s, strlen(s), NULL, NULL); }

static bool span_is(es_span s, const char *want) {
    return s.p != NULL && s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

/* nest returns depth '['s followed by depth ']'s (static buffer). */
static const char *nest(int depth) {
    static char buf[1024];
    for (int i = 0; i < depth; i++) {
        buf[i] = '[';
        buf[depth + i] = ']';
    }
    buf[2 * depth] = 0;
    return buf;
}

/* ------------------------------------------------------------ validation */

static const char *valid_json[] = {
    "0", "-0", "1", "-1", "12345678901234567890123", "1.5", "-0.0e-0", "1E+2", "1e-7", "0.25",
    "true", "false", "null", "\"\"", "\"a\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
    "\"\\u00e9\\u20AC\"", "\"\\ud83d\\ude00\"", "\"\\udc00\"", "\"caf\xc3\xa9\"", "\"\xff\"",
    "[]", "{}", "[1,2,3]", "[[],[[]],{}]", "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
    " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n", "{\"a\":1,\"a\":2}", "\"\x7f\"",
};

static const char *invalid_json[] = {
    "", " ", "{", "}", "[", "]", "[1,]", "[,1]", "[1 2]", "{\"a\":1,}", "{,}", "{\"a\"}",
    "{\"a\" 1}", "{\"a\":}", "{1:2}", "{a:1}", "{'a':1}", "01", "-01", "1.", ".5", "-", "+1",
    "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "tru", "truex", "nul", "nulll",
    "fals", "True", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"a\nb\"", "\"a\tb\"",
    "\"\\", "1 2", "{} {}", "[]]", "{\"a\":1}}", "\"a\"\"b\"", "[\"a\":1]", "{\"a\":1 \"b\":2}",
    "\xef\xbb\xbf{}", "/*c*/{}", "[1,2", "{\"a\":[1}", "[{]}",
};

static void test_parse(void) {
    for (size_t i = 0; i < sizeof valid_json / sizeof valid_json[0]; i++) {
        es_error e = {0};
        int r = parse_n(valid_json[i], strlen(valid_json[i]), NULL, &e);
        if (r != 0)
            fprintf(stderr, "valid JSON refused: %s (%s at %zu)\n", valid_json[i], e.msg, e.offset);
        CHECK(r == 0);
    }
    for (size_t i = 0; i < sizeof invalid_json / sizeof invalid_json[0]; i++) {
        es_error e = {0};
        int r = parse_n(invalid_json[i], strlen(invalid_json[i]), NULL, &e);
        if (r == 0)
            fprintf(stderr, "invalid JSON accepted: %s\n", invalid_json[i]);
        CHECK(r == -1 && e.msg != NULL && e.offset <= strlen(invalid_json[i]));
    }
    /* A NUL byte is a control character in a string and junk elsewhere. */
    CHECK(parse_n("\"a\0b\"", 5, NULL, NULL) == -1);
    CHECK(parse_n("1\0", 2, NULL, NULL) == -1);
    CHECK(es_parse(es_span_of(NULL, 0), NULL, NULL) == -1);

    /* The value without its whitespace. */
    es_span v;
    const char *s = "  [1, 2] \n";
    CHECK(parse_n(s, strlen(s), &v, NULL) == 0 && span_is(v, "[1, 2]"));

    /* Error offsets point at the problem. */
    es_error e;
    CHECK(parse_n("[1,2,x]", 7, NULL, &e) == -1 && e.offset == 5);
    CHECK(parse_n("{\"a\":1} 2", 9, NULL, &e) == -1 && e.offset == 8 &&
          strcmp(e.msg, "data after the JSON value") == 0);

    /* Nesting: ES_MAX_DEPTH levels pass, one more does not. */
    CHECK(parse(nest(ES_MAX_DEPTH)) == 0);
    CHECK(parse(nest(ES_MAX_DEPTH + 1)) == -1);
    CHECK(parse_n(nest(ES_MAX_DEPTH + 1), 2 * (ES_MAX_DEPTH + 1), NULL, &e) == -1 &&
          strcmp(e.msg, "nesting too deep") == 0);
    char deep[5 * 200 + 1];
    int n = 0;
    for (int i = 0; i < 200; i++)
        n += sprintf(deep + n, "{\"a\":");
    CHECK(parse(deep) == -1); /* and unterminated: must not matter */

    /* Every prefix of every valid value, in an exact-size buffer: no read
     * past the end (the sanitizer watches), and a verdict either way. */
    for (size_t i = 0; i < sizeof valid_json / sizeof valid_json[0]; i++) {
        size_t len = strlen(valid_json[i]);
        for (size_t k = 0; k < len; k++) {
            int r = parse_n(valid_json[i], k, NULL, NULL);
            CHECK(r == 0 || r == -1);
        }
    }
    const char *doc = "{\"a\":[1,{\"b\":\"c\\u00e9\\n\"},-2.5e3,true,null],\"d\":{}}";
    for (size_t k = 0; k < strlen(doc); k++)
        CHECK(parse_n(doc, k, NULL, NULL) == -1); /* no proper prefix of an object is valid */

    CHECK(es_valid(es_cstr("[1]")) && !es_valid(es_cstr("[1")));
}

/* Strings are scanned 8 bytes at a time: put each interesting byte at each
 * position of strings of several lengths, in exact-size buffers. */
static void test_string_words(void) {
    static const unsigned char bytes[] = {0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c,
                                          0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xa2, 0xdc, 0xff};
    char s[64];
    for (int len = 1; len <= 24; len++)
        for (int pos = 0; pos < len; pos++)
            for (size_t b = 0; b < sizeof bytes; b++) {
                unsigned char c = bytes[b];
                s[0] = '"';
                memset(s + 1, 'a', (size_t)len);
                s[1 + pos] = (char)c;
                s[1 + len] = '"';
                bool want = c >= 0x20 && c != '"' && c != '\\';
                es_span v;
                int r = parse_n(s, (size_t)len + 2, &v, NULL);
                CHECK((r == 0) == want);
                if (want) {
                    char *cp = es_test_copy(s, (size_t)len + 2);
                    CHECK(es_str_decode(es_span_of(cp, (size_t)len + 2), NULL, 0) == len);
                    free(cp);
                }
            }
}

/* ---------------------------------------------------- types and scalars */

static void test_types(void) {
    CHECK(es_type_of(es_cstr(" {}")) == ES_OBJECT);
    CHECK(es_type_of(es_cstr("[1]")) == ES_ARRAY);
    CHECK(es_type_of(es_cstr("\"s\"")) == ES_STRING);
    CHECK(es_type_of(es_cstr("-1")) == ES_NUMBER);
    CHECK(es_type_of(es_cstr("7")) == ES_NUMBER);
    CHECK(es_type_of(es_cstr("true")) == ES_TRUE);
    CHECK(es_type_of(es_cstr("false")) == ES_FALSE);
    CHECK(es_type_of(es_cstr("null")) == ES_NULL);
    CHECK(es_type_of(es_cstr("")) == ES_INVALID);
    CHECK(es_type_of(es_cstr("  ")) == ES_INVALID);
    CHECK(es_type_of(es_cstr("x")) == ES_INVALID);
    CHECK(es_type_of(es_span_of(NULL, 0)) == ES_INVALID);
    CHECK(es_is_null(es_cstr("null")) && es_is_null(es_cstr(" null ")));
    CHECK(es_is_null(es_span_of(NULL, 0)));
    CHECK(!es_is_null(es_cstr("nul")) && !es_is_null(es_cstr("{}")));

    int64_t i;
    CHECK(es_int64(es_cstr("0"), &i) == 0 && i == 0);
    CHECK(es_int64(es_cstr("-0"), &i) == 0 && i == 0);
    CHECK(es_int64(es_cstr(" 42 "), &i) == 0 && i == 42);
    CHECK(es_int64(es_cstr("-17"), &i) == 0 && i == -17);
    CHECK(es_int64(es_cstr("9223372036854775807"), &i) == 0 && i == INT64_MAX);
    CHECK(es_int64(es_cstr("-9223372036854775808"), &i) == 0 && i == INT64_MIN);
    CHECK(es_int64(es_cstr("9223372036854775808"), &i) == -1);
    CHECK(es_int64(es_cstr("-9223372036854775809"), &i) == -1);
    CHECK(es_int64(es_cstr("99999999999999999999"), &i) == -1);
    CHECK(es_int64(es_cstr("1.0"), &i) == -1);
    CHECK(es_int64(es_cstr("1e3"), &i) == -1);
    CHECK(es_int64(es_cstr("01"), &i) == -1);
    CHECK(es_int64(es_cstr("\"1\""), &i) == -1);
    CHECK(es_int64(es_cstr("1 2"), &i) == -1);
    CHECK(es_int64(es_cstr(""), &i) == -1);
    CHECK(es_int64(es_span_of(NULL, 0), &i) == -1);
    char *c = es_test_copy("123", 2); /* "12" with no terminator after it */
    CHECK(es_int64(es_span_of(c, 2), &i) == 0 && i == 12);
    free(c);

    double d;
    CHECK(es_double(es_cstr("1.5"), &d) == 0 && d == 1.5);
    CHECK(es_double(es_cstr("-2e3"), &d) == 0 && d == -2000);
    CHECK(es_double(es_cstr("7"), &d) == 0 && d == 7);
    CHECK(es_double(es_cstr("1e400"), &d) == -1);
    CHECK(es_double(es_cstr("1e-400"), &d) == 0 && d == 0);
    CHECK(es_double(es_cstr("0x10"), &d) == -1);
    CHECK(es_double(es_cstr("inf"), &d) == -1);
    char longnum[200] = "0.";
    memset(longnum + 2, '0', 150);
    strcpy(longnum + 152, "5");
    CHECK(es_double(es_cstr(longnum), &d) == 0 && d > 4.9e-151 && d < 5.1e-151);

    bool b;
    CHECK(es_bool(es_cstr("true"), &b) == 0 && b);
    CHECK(es_bool(es_cstr("false"), &b) == 0 && !b);
    CHECK(es_bool(es_cstr("1"), &b) == -1 && es_bool(es_cstr("null"), &b) == -1);

    char buf[21];
    CHECK(es_fmt_int(buf, 0) == 1 && memcmp(buf, "0", 1) == 0);
    CHECK(es_fmt_int(buf, -1) == 2 && memcmp(buf, "-1", 2) == 0);
    CHECK(es_fmt_int(buf, INT64_MAX) == 19 && memcmp(buf, "9223372036854775807", 19) == 0);
    CHECK(es_fmt_int(buf, INT64_MIN) == 20 && memcmp(buf, "-9223372036854775808", 20) == 0);
}

/* --------------------------------------------------------------- strings */

static void test_strings(void) {
    CHECK(es_str_eq(es_cstr("\"kind\""), "kind"));
    CHECK(!es_str_eq(es_cstr("\"kind\""), "kin"));
    CHECK(!es_str_eq(es_cstr("\"kin\""), "kind"));
    CHECK(es_str_eq(es_cstr("\"\""), ""));
    CHECK(es_str_eq(es_cstr("\"k\\u0069nd\""), "kind"));
    CHECK(es_str_eq(es_cstr("\"a\\\"b\""), "a\"b"));
    CHECK(es_str_eq(es_cstr("\"\\u00e9\""), "\xc3\xa9"));
    CHECK(es_str_eq(es_cstr("\"\\ud83d\\ude00\""), "\xf0\x9f\x98\x80"));
    CHECK(es_str_eq(es_cstr("\"\\ud83d\""), "\xef\xbf\xbd"));           /* lone high */
    CHECK(es_str_eq(es_cstr("\"\\ude00x\""), "\xef\xbf\xbdx"));         /* lone low */
    CHECK(es_str_eq(es_cstr("\"\\ud83d\\u0041\""), "\xef\xbf\xbd" "A")); /* high + non-low */
    CHECK(es_str_eq_n(es_cstr("\"a\\u0000b\""), "a\0b", 3));
    CHECK(!es_str_eq(es_cstr("kind"), "kind"));     /* not a string */
    CHECK(!es_str_eq(es_cstr("\"kind"), "kind"));   /* unterminated */
    CHECK(!es_str_eq(es_cstr("\"kind\"x"), "kind")); /* junk after it */
    CHECK(!es_str_eq(es_cstr("\"a\nb\""), "a\nb")); /* raw control character */
    CHECK(!es_str_eq(es_cstr("\"\\q\""), "q"));
    CHECK(!es_str_eq(es_span_of(NULL, 0), ""));
    CHECK(!es_str_eq(es_cstr("\""), ""));
    char *c = es_test_copy("\"ab\\", 4); /* ends inside an escape */
    CHECK(!es_str_eq(es_span_of(c, 4), "ab"));
    CHECK(es_str_decode(es_span_of(c, 4), NULL, 0) == -1);
    free(c);
    c = es_test_copy("\"\\u00", 5);
    CHECK(es_str_decode(es_span_of(c, 5), NULL, 0) == -1);
    free(c);

    char buf[8];
    CHECK(es_str_decode(es_cstr("\"a\\tb\""), buf, sizeof buf) == 3 && memcmp(buf, "a\tb", 3) == 0);
    CHECK(es_str_decode(es_cstr("\"abcdefghij\""), buf, 4) == 10 && memcmp(buf, "abcd", 4) == 0);
    CHECK(es_str_decode(es_cstr("\"\\u20ac\""), buf, sizeof buf) == 3 &&
          memcmp(buf, "\xe2\x82\xac", 3) == 0);
    CHECK(es_str_decode(es_cstr("1"), buf, sizeof buf) == -1);
}

/* ----------------------------------------------------- objects, arrays */

static void test_members(void) {
    const char *doc = "{\"id\":\"c1\", \"count\" : 12 ,\"items\":[1,{\"count\":3}],\"c\\u006funt2\":[]}";
    es_span obj = es_cstr(doc), v;
    CHECK(es_member(obj, "id", &v) == 1 && span_is(v, "\"c1\""));
    CHECK(es_member(obj, "count", &v) == 1 && span_is(v, "12"));
    CHECK(es_member(obj, "items", &v) == 1 && span_is(v, "[1,{\"count\":3}]"));
    CHECK(es_member(obj, "count2", &v) == 1 && span_is(v, "[]")); /* escaped key */
    CHECK(es_member(obj, "missing", &v) == 0);
    CHECK(es_member(obj, "", &v) == 0);
    CHECK(es_member(es_cstr("{\"a\":1,\"a\":2}"), "a", &v) == 1 && span_is(v, "2"));
    CHECK(es_member(es_cstr("{}"), "a", &v) == 0);
    CHECK(es_member(es_cstr(" { \"a\" : 1 } "), "a", &v) == 1 && span_is(v, "1"));
    CHECK(es_member_n(es_cstr("{\"a\\u0000\":1}"), "a\0", 2, &v) == 1);
    CHECK(es_member(es_cstr("[1]"), "a", &v) == -1);
    CHECK(es_member(es_cstr("null"), "a", &v) == -1);
    CHECK(es_member(es_span_of(NULL, 0), "a", &v) == -1);
    CHECK(es_member(es_cstr("{\"a\":1"), "a", &v) == -1);
    CHECK(es_member(es_cstr("{\"a\":1,}"), "a", &v) == -1);
    CHECK(es_member(es_cstr("{\"a\":1}x"), "a", &v) == -1);
    CHECK(es_member(es_cstr("{\"a\":1}{}"), "a", &v) == -1);
    CHECK(es_member(es_cstr("{\"a\":[1,}"), "b", &v) == -1);
    CHECK(es_member(es_cstr("{\"a\" 1}"), "a", &v) == -1);
    CHECK(es_member(es_cstr("{a:1}"), "a", &v) == -1);

    /* Exact-size buffers cut at every position: no overread. */
    size_t n = strlen(doc);
    for (size_t k = 0; k <= n; k++) {
        char *c = es_test_copy(doc, k);
        int r = es_member(es_span_of(c, k), "c\x6funt2", &v);
        CHECK(k == n ? r == 1 : r == -1);
        free(c);
    }

    es_iter it;
    es_span e, k;
    const char *arr = "[ 1 ,\"two\",[3, 4] , {\"five\":5},null ]";
    const char *want[] = {"1", "\"two\"", "[3, 4]", "{\"five\":5}", "null"};
    int i = 0, r;
    CHECK(es_array_begin(&it, es_cstr(arr)) == 0);
    while ((r = es_array_next(&it, &e)) == 1) {
        CHECK(i < 5 && span_is(e, want[i]));
        i++;
    }
    CHECK(r == 0 && i == 5);
    CHECK(es_array_next(&it, &e) == 0); /* stays at the end */
    CHECK(es_count(es_cstr(arr)) == 5);
    CHECK(es_count(es_cstr("[]")) == 0 && es_count(es_cstr("[ ]")) == 0);
    CHECK(es_count(es_cstr("{\"a\":1,\"b\":2}")) == 2 && es_count(es_cstr("{}")) == 0);
    CHECK(es_count(es_cstr("1")) == -1 && es_count(es_cstr("[1,")) == -1);
    CHECK(es_array_begin(&it, es_cstr("{}")) == -1 && es_array_next(&it, &e) == -1);

    /* A malformed array: the good elements, then -1, then -1 again. */
    CHECK(es_array_begin(&it, es_cstr("[1,2 3]")) == 0);
    CHECK(es_array_next(&it, &e) == 1 && span_is(e, "1"));
    CHECK(es_array_next(&it, &e) == 1 && span_is(e, "2"));
    CHECK(es_array_next(&it, &e) == -1 && es_array_next(&it, &e) == -1);
    CHECK(es_array_begin(&it, es_cstr("[1,]")) == 0);
    CHECK(es_array_next(&it, &e) == 1 && es_array_next(&it, &e) == -1);
    CHECK(es_array_begin(&it, es_cstr("[1]]")) == 0);
    CHECK(es_array_next(&it, &e) == 1 && es_array_next(&it, &e) == -1);

    CHECK(es_object_begin(&it, es_cstr("{\"a\":1, \"b\" :[2]}")) == 0);
    CHECK(es_object_next(&it, &k, &v) == 1 && span_is(k, "\"a\"") && span_is(v, "1"));
    CHECK(es_object_next(&it, &k, &v) == 1 && span_is(k, "\"b\"") && span_is(v, "[2]"));
    CHECK(es_object_next(&it, &k, &v) == 0);
    CHECK(es_object_begin(&it, es_cstr("[]")) == -1);

    /* Values nested as deep as allowed inside an iterated container. */
    char deep[2 * ES_MAX_DEPTH + 3];
    snprintf(deep, sizeof deep, "[%s]", nest(ES_MAX_DEPTH - 1));
    CHECK(es_count(es_cstr(deep)) == 1);
    snprintf(deep, sizeof deep, "[%s]", nest(ES_MAX_DEPTH));
    CHECK(es_count(es_cstr(deep)) == -1);
}

/* ------------------------------------------------------ compact text */

static void test_compact(void) {
    CHECK(es_equal_compact(es_cstr("{\"a\": [1, 2]}"), es_cstr("{\"a\":[1,2]}")));
    CHECK(es_equal_compact(es_cstr(" \"x\" "), es_cstr("\"x\"")));
    CHECK(!es_equal_compact(es_cstr("\"a b\""), es_cstr("\"ab\"")));
    CHECK(!es_equal_compact(es_cstr("\"a\\\" b\""), es_cstr("\"a\\\"b\"")));
    CHECK(!es_equal_compact(es_cstr("\"a\\\\\" "), es_cstr("\"a\\\\ \"")));
    CHECK(!es_equal_compact(es_cstr("1"), es_cstr("\"1\"")));
    CHECK(!es_equal_compact(es_cstr("[1]"), es_cstr("[1,2]")));
    CHECK(!es_equal_compact(es_cstr("\"\\u0061\""), es_cstr("\"a\""))); /* text, not value */
    CHECK(es_hash_compact(es_cstr("{ \"a\" : 1 }")) == es_hash_compact(es_cstr("{\"a\":1}")));
    CHECK(es_hash_compact(es_cstr("[1,2]")) != es_hash_compact(es_cstr("[2,1]")));
    char buf[64];
    const char *s = " { \"a b\" : [ 1 , \"\\\" x\" ] } ";
    size_t n = es_compact(es_cstr(s), buf);
    CHECK(n == strlen("{\"a b\":[1,\"\\\" x\"]}") && memcmp(buf, "{\"a b\":[1,\"\\\" x\"]}", n) == 0);
}

/* ----------------------------------------------------------------- input */

static void test_input(void) {
    es_input in;
    es_error e;
    const char *full = "{\"kind\":\"replace\",\"container\":\"carts\",\"id\":\"cart-1\","
                       "\"incoming\":{\"id\":\"cart-1\",\"items\":[\"book\"]},"
                       "\"existing\":{\"id\":\"cart-1\",\"items\":[\"pen\"]},"
                       "\"base\":{\"id\":\"cart-1\",\"items\":[]},\"isTombstone\":false,"
                       "\"conflicting\":[{\"id\":\"cart-1\"}],\"future\":{\"x\":1}}";
    CHECK(es_parse_input(es_cstr(full), &in, &e) == 0);
    CHECK(es_str_eq(in.kind, "replace") && es_str_eq(in.container, "carts") &&
          es_str_eq(in.id, "cart-1"));
    CHECK(span_is(in.incoming, "{\"id\":\"cart-1\",\"items\":[\"book\"]}"));
    CHECK(span_is(in.existing, "{\"id\":\"cart-1\",\"items\":[\"pen\"]}"));
    CHECK(span_is(in.base, "{\"id\":\"cart-1\",\"items\":[]}"));
    CHECK(span_is(in.conflicting, "[{\"id\":\"cart-1\"}]"));
    CHECK(!in.is_tombstone && !in.incoming_deleted && !in.existing_deleted && in.has_base);

    CHECK(es_parse_input(es_cstr("{\"kind\":\"delete\",\"incoming\":null,\"existing\":{},"
                                 "\"base\":null,\"isTombstone\":true}"),
                         &in, &e) == 0);
    CHECK(in.incoming_deleted && !in.existing_deleted && !in.has_base && in.is_tombstone);
    CHECK(span_is(in.conflicting, "[]") && in.id.p == NULL);

    CHECK(es_parse_input(es_cstr(" {} "), &in, &e) == 0);
    CHECK(in.incoming_deleted && in.existing_deleted && !in.has_base && span_is(in.incoming, "null"));
    CHECK(es_parse_input(es_cstr("{\"kind\":null,\"isTombstone\":null,\"conflicting\":null}"), &in, &e) == 0);

    static const struct {
        const char *input, *msg;
    } bad[] = {
        {"", "empty: no JSON value"},
        {"[]", "the input is not a JSON object"},
        {"{\"kind\":1}", "kind, container and id must be strings"},
        {"{\"id\":{}}", "kind, container and id must be strings"},
        {"{\"isTombstone\":\"yes\"}", "isTombstone must be a boolean"},
        {"{\"conflicting\":{}}", "conflicting must be an array"},
        {"{\"incoming\":{\"a\":}}", "invalid character at the start of a value"},
        {"{\"incoming\":{}} x", "data after the JSON value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg = NULL;
        int r = es_parse_input(es_cstr(bad[i].input), &in, &e);
        CHECK(r == -1 && e.msg != NULL && strcmp(e.msg, bad[i].msg) == 0);
        if (r != -1 || e.msg == NULL || strcmp(e.msg, bad[i].msg) != 0)
            fprintf(stderr, "  input %s: got %s\n", bad[i].input, e.msg ? e.msg : "(ok)");
    }
    CHECK(es_parse_input(es_cstr("{\"isTombstone\":\"yes\"}"), &in, &e) == -1 && e.offset == 15);
}

/* ---------------------------------------------------------------- output */

static const char *sample =
    "{\"kind\":\"replace\",\"container\":\"c\",\"id\":\"k\",\"incoming\":{\"id\":\"k\",\"n\":2},"
    "\"existing\":{\"id\":\"k\", \"n\" : 1 ,\"tags\":[ \"a\" ]},\"base\":null,"
    "\"isTombstone\":false,\"conflicting\":[]}";

static int r_incoming(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "incoming");
}

static int r_merge_with(const es_input *in, es_output *out) {
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_with(out, in->existing, "n", es_cstr("3")) || es_out_reason(out, "sum");
}

static int r_with_new_member(const es_input *in, es_output *out) {
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_with(out, in->existing, "new", es_cstr("{\"x\":[1]}"));
}

static int r_without(const es_input *in, es_output *out) {
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_without(out, in->existing, "n");
}

static int write_list(es_output *out, void *arg) {
    (void)arg;
    return es_out_char(out, '[') || es_out_int(out, -5) || es_out_char(out, ',') ||
           es_out_cstring(out, "q\"uote") || es_out_char(out, ',') ||
           es_out_compact(out, es_cstr(" { \"a\" : 1 } ")) || es_out_char(out, ']');
}

static int r_edits(const es_input *in, es_output *out) {
    es_edit edits[] = {
        {"tags", {NULL, 0}, write_list, NULL},  /* replaced in place by a writer */
        {"id", {NULL, 0}, NULL, NULL},          /* removed */
        {"z", {"true", 4}, NULL, NULL},         /* appended */
        {"absent", {NULL, 0}, NULL, NULL},      /* removing what is not there */
        {"k\"ey", {"null", 4}, NULL, NULL},     /* appended, key escaped */
    };
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_edit(out, in->existing, edits, sizeof edits / sizeof edits[0]) ||
           es_out_reason(out, "edited");
}

static int r_dup_keys(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_with(out, es_cstr("{\"a\":1,\"b\":2,\"a\":3}"), "a", es_cstr("9"));
}

static int r_handmade_doc(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "merge") || es_out_document(out) || es_out_char(out, '{') ||
           es_out_string(out, "a\0b", 3) || es_out_char(out, ':') || es_out_int(out, INT64_MIN) ||
           es_out_raw(out, ",\"c\":", 5) || es_out_span(out, es_cstr("[true]")) ||
           es_out_char(out, '}');
}

static int r_reason_escapes(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "defer") || es_out_reason(out, "q\"b\\n\nt\tc\x01 \x7f") ||
           es_out_reason(out, " bad\xff\xc3(") || es_out_reason(out, " ok\xc3\xa9\xf0\x9f\x98\x80") ||
           es_out_reason_n(out, "\0z", 2) || es_out_reason_int(out, -12);
}

static int r_reason_long(const es_input *in, es_output *out) {
    (void)in;
    char s[2000];
    memset(s, 'x', 1022);
    memcpy(s + 1022, "\xc3\xa9", 2); /* fits exactly: 1024 bytes */
    memcpy(s + 1024, "yyy", 4);
    return es_out_defer(out, s) || es_out_reason(out, "more");
}

static int r_reason_boundary(const es_input *in, es_output *out) {
    (void)in;
    char s[1100];
    memset(s, 'x', 1023);
    strcpy(s + 1023, "\xe2\x82\xac"); /* a 3-byte character that does not fit */
    return es_out_defer(out, s);
}

static int r_reason_escape_boundary(const es_input *in, es_output *out) {
    (void)in;
    char s[1100];
    memset(s, '"', 1030); /* each is 1 byte decoded, 2 written */
    s[1030] = 0;
    return es_out_defer(out, s);
}

static int r_merge_then_reason_then_doc(const es_input *in, es_output *out) {
    return es_out_action(out, "merge") || es_out_document(out) || es_out_span(out, in->existing) ||
           es_out_reason(out, "r") || es_out_char(out, ' ');
}

static int r_no_action(const es_input *in, es_output *out) {
    (void)in;
    (void)out;
    return 0;
}
static int r_unknown_action(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "explode");
}
static int r_twice(const es_input *in, es_output *out) {
    (void)in;
    es_out_action(out, "incoming");
    return es_out_action(out, "existing");
}
static int r_doc_without_merge(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "incoming") || es_out_document(out);
}
static int r_merge_without_doc(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "merge") || es_out_reason(out, "x");
}
static int r_writer_first(const es_input *in, es_output *out) {
    (void)in;
    return es_out_char(out, '{');
}
static int r_bad_doc(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "merge") || es_out_document(out) || es_out_raw(out, "{\"a\":", 5);
}
static int r_array_doc(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "merge") || es_out_document(out) || es_out_raw(out, "[1]", 3);
}
static int r_empty_doc(const es_input *in, es_output *out) {
    (void)in;
    return es_out_action(out, "merge") || es_out_document(out);
}
static int r_returns_7(const es_input *in, es_output *out) {
    (void)in;
    es_out_action(out, "incoming");
    return 7;
}
static int r_reason_first(const es_input *in, es_output *out) {
    (void)in;
    return es_out_reason(out, "why");
}
static int r_with_not_object(const es_input *in, es_output *out) {
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_with(out, in->conflicting, "a", es_cstr("1"));
}
static int r_with_no_value(const es_input *in, es_output *out) {
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_with(out, in->existing, "n", es_span_of(NULL, 0));
}
static int failing_writer(es_output *out, void *arg) {
    (void)out;
    (void)arg;
    return -1;
}
static int r_edit_writer_fails(const es_input *in, es_output *out) {
    es_edit e = {"n", {NULL, 0}, failing_writer, NULL};
    return es_out_action(out, "merge") || es_out_document(out) || es_out_edit(out, in->existing, &e, 1);
}

/* r_alloc allocates from the arena: small and large, more than a block. */
static int r_alloc(const es_input *in, es_output *out) {
    (void)in;
    size_t total = 0;
    for (int i = 0; i < 100; i++) {
        size_t n = (size_t)(i * 977 % 5000) + 1;
        unsigned char *p = es_alloc(n);
        if (p == NULL || ((uintptr_t)p & (_Alignof(max_align_t) - 1)) != 0)
            return es_out_defer(out, "bad allocation");
        memset(p, 0xab, n);
        total += n;
    }
    char *big = es_alloc(300000);
    if (big == NULL)
        return es_out_defer(out, "no big allocation");
    memset(big, 1, 300000);
    if (es_alloc((size_t)-1) != NULL)
        return es_out_defer(out, "absurd allocation succeeded");
    return es_out_action(out, "existing") || es_out_reason(out, "allocated ") ||
           es_out_reason_int(out, (int64_t)total);
}

#define RUN_WITH(fn, input, want)                                                        \
    do {                                                                                 \
        hook = (fn);                                                                     \
        EXPECT_RUN((input), (want));                                                     \
    } while (0)

static void test_output(void) {
    RUN_WITH(r_incoming, sample, "{\"action\":\"incoming\"}");
    RUN_WITH(r_merge_with, sample,
             "{\"action\":\"merge\",\"document\":{\"id\":\"k\",\"n\":3,\"tags\":[ \"a\" ]},"
             "\"reason\":\"sum\"}");
    RUN_WITH(r_with_new_member, sample,
             "{\"action\":\"merge\",\"document\":{\"id\":\"k\",\"n\":1,\"tags\":[ \"a\" ],"
             "\"new\":{\"x\":[1]}}}");
    RUN_WITH(r_without, sample, "{\"action\":\"merge\",\"document\":{\"id\":\"k\",\"tags\":[ \"a\" ]}}");
    RUN_WITH(r_edits, sample,
             "{\"action\":\"merge\",\"document\":{\"n\":1,\"tags\":[-5,\"q\\\"uote\",{\"a\":1}],"
             "\"z\":true,\"k\\\"ey\":null},\"reason\":\"edited\"}");
    RUN_WITH(r_dup_keys, sample, "{\"action\":\"merge\",\"document\":{\"a\":9,\"b\":2}}");
    RUN_WITH(r_handmade_doc, sample,
             "{\"action\":\"merge\",\"document\":{\"a\\u0000b\":-9223372036854775808,"
             "\"c\":[true]}}");
    RUN_WITH(r_reason_escapes, sample,
             "{\"action\":\"defer\",\"reason\":\"q\\\"b\\\\n\\nt\\tc\\u0001 \x7f bad\xef\xbf\xbd"
             "\xef\xbf\xbd( ok\xc3\xa9\xf0\x9f\x98\x80\\u0000z-12\"}");
    RUN_WITH(r_alloc, sample, "{\"action\":\"existing\",\"reason\":\"allocated 251250\"}");
    RUN_WITH(r_alloc, sample, "{\"action\":\"existing\",\"reason\":\"allocated 251250\"}");

    /* Reasons are cut at ES_MAX_REASON decoded bytes, at a character. */
    char want[2200];
    memcpy(want, "{\"action\":\"defer\",\"reason\":\"", 28);
    memset(want + 28, 'x', 1022);
    strcpy(want + 28 + 1022, "\xc3\xa9\"}");
    RUN_WITH(r_reason_long, sample, want);
    memset(want + 28, 'x', 1023);
    strcpy(want + 28 + 1023, "\"}");
    RUN_WITH(r_reason_boundary, sample, want);
    char *p = want + 28;
    for (int i = 0; i < 1024; i++, p += 2)
        memcpy(p, "\\\"", 2);
    strcpy(p, "\"}");
    RUN_WITH(r_reason_escape_boundary, sample, want);

    /* Misuse of the builder becomes a defer saying what was wrong. */
    RUN_WITH(r_merge_then_reason_then_doc, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: a document writer was called "
             "outside the document (es_out_action(out, \\\"merge\\\") and es_out_document come "
             "first)\"}");
    RUN_WITH(r_no_action, sample, "{\"action\":\"defer\",\"reason\":\"resolver failed: es_resolve set no action\"}");
    RUN_WITH(r_unknown_action, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: unknown action (want incoming, "
             "existing, merge, delete or defer)\"}");
    RUN_WITH(r_twice, sample, "{\"action\":\"defer\",\"reason\":\"resolver failed: es_out_action was called twice\"}");
    RUN_WITH(r_doc_without_merge, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: a document goes only with the "
             "action merge, set first\"}");
    RUN_WITH(r_merge_without_doc, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: the action merge needs a document\"}");
    RUN_WITH(r_writer_first, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: a document writer was called "
             "outside the document (es_out_action(out, \\\"merge\\\") and es_out_document come "
             "first)\"}");
    RUN_WITH(r_bad_doc, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: its document is not valid JSON: "
             "unexpected end of JSON at byte 5\"}");
    RUN_WITH(r_array_doc, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: its document is not a JSON object\"}");
    RUN_WITH(r_empty_doc, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: its document is not valid JSON: "
             "empty: no JSON value at byte 0\"}");
    RUN_WITH(r_returns_7, sample, "{\"action\":\"defer\",\"reason\":\"resolver failed: es_resolve returned 7\"}");
    RUN_WITH(r_reason_first, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: a reason was written before the action\"}");
    RUN_WITH(r_with_not_object, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: es_out_edit: the document to copy "
             "is not a JSON object\"}");
    RUN_WITH(r_with_no_value, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: es_out_with: no value (use "
             "es_out_without to remove a member)\"}");
    RUN_WITH(r_edit_writer_fails, sample,
             "{\"action\":\"defer\",\"reason\":\"resolver failed: es_out_edit: the value writer "
             "failed\"}");

    /* An invalid input never reaches es_resolve. */
    hook = r_incoming;
    EXPECT_RUN("", "{\"action\":\"defer\",\"reason\":\"resolver failed: its input is not valid: "
                   "empty: no JSON value at byte 0\"}");
    EXPECT_RUN("{\"kind\":\"replace\",\"incoming\":{\"a\":[1,]}}",
               "{\"action\":\"defer\",\"reason\":\"resolver failed: its input is not valid: "
               "invalid character at the start of a value at byte 37\"}");
    EXPECT_RUN("[1]", "{\"action\":\"defer\",\"reason\":\"resolver failed: its input is not valid: "
                      "the input is not a JSON object at byte 0\"}");
    size_t on;
    const char *out = es_run(NULL, 0, &on);
    CHECK(on > 0 && memcmp(out, "{\"action\":\"defer\"", 17) == 0);

    /* The default resolver: the id is decoded, cut at 40 bytes. */
    hook = NULL;
    EXPECT_RUN("{\"id\":\"\\u00e9t\\u00e9\",\"existing\":{\"id\":1, \"a\" : [ {}, [ ] , \"x\\\"]\" ]}}",
               "{\"action\":\"merge\",\"document\":{\"id\":1,\"a\":[ {}, [ ] , \"x\\\"]\" ],"
               "\"seen\":true,\"walk\":{\"id\":1,\"a\":[{},[],\"x\\\"]\"]}},"
               "\"reason\":\"id \xc3\xa9t\xc3\xa9\"}");
}

/* ------------------------------------------------- differential modes */

/* read_record reads one length-prefixed record into a fresh exact-size
 * buffer: its length, or -1 at the end of input. */
static long read_record(char **buf) {
    unsigned char h[4];
    if (fread(h, 1, 4, stdin) != 4)
        return -1;
    size_t n = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
    *buf = malloc(n ? n : 1);
    if (*buf == NULL || fread(*buf, 1, n, stdin) != n) {
        fprintf(stderr, "short record\n");
        exit(2);
    }
    return (long)n;
}

static void write_record(const char *p, long n) {
    uint32_t u = n < 0 ? 0xffffffffu : (uint32_t)n;
    unsigned char h[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 24)};
    fwrite(h, 1, 4, stdout);
    if (n > 0)
        fwrite(p, 1, (size_t)n, stdout);
}

static int es_test_modes(int argc, char **argv) {
    if (argc < 2)
        return -1;
    const char *mode = argv[1];
    if (strcmp(mode, "valid") != 0 && strcmp(mode, "compact") != 0 && strcmp(mode, "decode") != 0)
        return -1;
    char *in;
    long n;
    while ((n = read_record(&in)) >= 0) {
        es_span v;
        bool ok = es_parse(es_span_of(in, (size_t)n), &v, NULL) == 0;
        if (strcmp(mode, "valid") == 0) {
            putchar(ok ? '1' : '0');
        } else if (strcmp(mode, "compact") == 0) {
            char *c = malloc((size_t)n + 1);
            write_record(c, ok ? (long)es_compact(v, c) : -1);
            free(c);
        } else {
            long dn = es_str_decode(es_span_of(in, (size_t)n), NULL, 0);
            char *d = malloc(dn > 0 ? (size_t)dn : 1);
            if (dn >= 0)
                es_str_decode(es_span_of(in, (size_t)n), d, (size_t)dn);
            write_record(d, ok && es_type_of(v) == ES_STRING ? dn : -1);
            free(d);
        }
        free(in);
    }
    return fflush(stdout) == 0 ? 0 : 2;
}

static void es_test_main(void) {
    test_parse();
    test_string_words();
    test_types();
    test_strings();
    test_members();
    test_compact();
    test_input();
    test_output();
}
