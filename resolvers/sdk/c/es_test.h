/*
 * es_test.h - a tiny native test harness for the C SDK and resolvers
 * written with it. Include it in exactly one test file, compiled natively
 * (gcc or clang, ideally with -fsanitize=address,undefined) together with
 * edgesync.c and the resolver; sdk_test.go builds and runs them.
 *
 * A test file defines es_test_main(), which runs its checks; main() then
 * prints a summary and exits 1 if any check failed. With the argument
 * "run", the binary instead reads inputs from stdin, each as a 4-byte
 * little-endian length followed by that many bytes, and writes each output
 * of es_run the same way (the Go test uses it to feed generated inputs).
 * A test file that defines ES_TEST_MODES also defines
 * int es_test_modes(int argc, char **argv), called first: it returns the
 * exit code of a mode it handled, or -1.
 */
#ifndef ES_TEST_H
#define ES_TEST_H

#include "edgesync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int es_test_checks, es_test_failures;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        es_test_checks++;                                                                \
        if (!(cond)) {                                                                   \
            es_test_failures++;                                                          \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);     \
        }                                                                                \
    } while (0)

/* es_test_copy returns a heap copy of n bytes of s, exactly n bytes long,
 * so that the sanitizer catches any read past its end. Free it. */
static char *es_test_copy(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    if (p == NULL) {
        perror("malloc");
        exit(2);
    }
    if (n > 0)
        memcpy(p, s, n);
    return p;
}

/* es_test_run_n runs es_run on an exact-size heap copy of input and
 * returns a NUL-terminated heap copy of the output (free it). Every output
 * must be one valid JSON object. */
static char *es_test_run_n(const char *input, size_t n) {
    char *in = es_test_copy(input, n);
    size_t on;
    const char *out = es_run(in, n, &on);
    free(in);
    es_span v;
    if (es_parse(es_span_of(out, on), &v, NULL) < 0 || es_type_of(v) != ES_OBJECT) {
        es_test_failures++;
        fprintf(stderr, "es_run output is not a JSON object: %.*s\n", (int)on, out);
    }
    char *s = malloc(on + 1);
    if (s == NULL)
        exit(2);
    memcpy(s, out, on);
    s[on] = 0;
    return s;
}

/* EXPECT_RUN checks that es_run(input) is exactly want. */
#define EXPECT_RUN(input, want) es_test_expect_run(__FILE__, __LINE__, (input), (want))

static void es_test_expect_run(const char *file, int line, const char *input, const char *want) {
    char *got = es_test_run_n(input, strlen(input));
    es_test_checks++;
    if (strcmp(got, want) != 0) {
        es_test_failures++;
        fprintf(stderr, "%s:%d: es_run(%s)\n   got %s\n  want %s\n", file, line, input, got,
                want);
    }
    free(got);
}

/* es_test_input builds a resolver input from the three documents ("" for
 * null, base NULL for none) into a static buffer. */
__attribute__((unused)) static const char *es_test_input(const char *kind, const char *base, const char *existing,
                                 const char *incoming) {
    static char buf[1 << 16];
    int n = snprintf(buf, sizeof buf,
                     "{\"kind\":\"%s\",\"container\":\"c\",\"id\":\"x\",\"incoming\":%s,"
                     "\"existing\":%s,\"base\":%s,\"isTombstone\":%s,\"conflicting\":[]}",
                     kind, *incoming ? incoming : "null", *existing ? existing : "null",
                     base && *base ? base : "null", !*incoming || !*existing ? "true" : "false");
    if (n < 0 || (size_t)n >= sizeof buf) {
        fprintf(stderr, "es_test_input: input too long\n");
        exit(2);
    }
    return buf;
}

static void es_test_main(void);
#ifdef ES_TEST_MODES
static int es_test_modes(int argc, char **argv);
#endif

/* es_test_serve is the "run" mode. */
static int es_test_serve(void) {
    unsigned char hdr[4];
    while (fread(hdr, 1, 4, stdin) == 4) {
        size_t n = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
        char *in = malloc(n ? n : 1);
        if (in == NULL || fread(in, 1, n, stdin) != n) {
            fprintf(stderr, "short input record\n");
            return 2;
        }
        size_t on;
        const char *out = es_run(in, n, &on);
        unsigned char oh[4] = {(unsigned char)on, (unsigned char)(on >> 8),
                               (unsigned char)(on >> 16), (unsigned char)(on >> 24)};
        fwrite(oh, 1, 4, stdout);
        fwrite(out, 1, on, stdout);
        free(in);
    }
    return fflush(stdout) == 0 ? 0 : 2;
}

int main(int argc, char **argv) {
#ifdef ES_TEST_MODES
    int code = es_test_modes(argc, argv);
    if (code >= 0)
        return code;
#endif
    if (argc > 1 && strcmp(argv[1], "run") == 0)
        return es_test_serve();
    es_test_main();
    printf("%d checks, %d failed\n", es_test_checks, es_test_failures);
    return es_test_failures == 0 ? 0 : 1;
}

#endif /* ES_TEST_H */
