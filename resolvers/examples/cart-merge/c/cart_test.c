/*
 * cart_test.c - native tests of cart.c (built and run by
 * resolvers/sdk/c/sdk_test.go, with edgesync.c and cart.c).
 */
#include "es_test.h"

#define MERGED(doc)                                                                      \
    "{\"action\":\"merge\",\"document\":" doc ",\"reason\":\"cart-merge: items merged as a set\"}"
#define DEFER(reason) "{\"action\":\"defer\",\"reason\":\"" reason "\"}"

/* big_case merges 3000 items: base has 0..1999, existing removes the even
 * ones, incoming removes those divisible by 3 and adds 2000..2999. */
static void big_case(void) {
    static char base[40000], ex[40000], inc[40000], want[40000 + 200];
    char *b = base, *e = ex, *in = inc, *w = want;
    b += sprintf(b, "{\"id\":\"c\",\"items\":[");
    e += sprintf(e, "{\"id\":\"c\",\"items\":[");
    in += sprintf(in, "{\"id\":\"c\",\"items\":[");
    w += sprintf(w, "{\"action\":\"merge\",\"document\":{\"id\":\"c\",\"items\":[");
    int wn = 0, en = 0, inn = 0;
    for (int i = 0; i < 2000; i++) {
        b += sprintf(b, "%s%d", i ? "," : "", i);
        if (i % 2 != 0)
            e += sprintf(e, "%s%d", en++ ? "," : "", i);
        if (i % 3 != 0)
            in += sprintf(in, "%s%d", inn++ ? "," : "", i);
        if (i % 2 != 0 && i % 3 != 0)
            w += sprintf(w, "%s%d", wn++ ? "," : "", i);
    }
    for (int i = 2000; i < 3000; i++) {
        in += sprintf(in, ",%d", i);
        w += sprintf(w, ",%d", i);
    }
    strcpy(b, "]}");
    strcpy(e, "]}");
    strcpy(in, "]}");
    strcpy(w, "]},\"reason\":\"cart-merge: items merged as a set\"}");
    EXPECT_RUN(es_test_input("replace", base, ex, inc), want);
}

static void es_test_main(void) {
    /* The cases of wasmhost's TestExamples, exactly. */
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"c1\",\"owner\":\"ann\",\"items\":[\"phone\"]}",
                             "{\"id\":\"c1\",\"owner\":\"ann\",\"items\":[]}",
                             "{\"id\":\"c1\",\"owner\":\"ann\",\"items\":[\"phone\",\"book\"]}"),
               MERGED("{\"id\":\"c1\",\"owner\":\"ann\",\"items\":[\"book\"]}"));
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"c1\",\"items\":[\"a\"]}",
                             "{\"id\":\"c1\",\"items\":[\"a\",\"b\"]}", "{\"id\":\"c1\",\"items\":[\"a\",\"c\"]}"),
               MERGED("{\"id\":\"c1\",\"items\":[\"a\",\"b\",\"c\"]}"));
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"c1\",\"items\":[{\"sku\":1}]}",
                             "{\"id\":\"c1\",\"items\":[{\"sku\":1},{\"sku\":2}]}",
                             "{\"id\":\"c1\",\"items\":[]}"),
               MERGED("{\"id\":\"c1\",\"items\":[{\"sku\":2}]}"));
    EXPECT_RUN(es_test_input("insert", NULL, "{\"id\":\"c1\",\"items\":[\"a\"]}",
                             "{\"id\":\"c1\",\"items\":[\"b\"]}"),
               MERGED("{\"id\":\"c1\",\"items\":[\"a\",\"b\"]}"));
    EXPECT_RUN(es_test_input("delete", "{\"id\":\"c1\",\"items\":[]}", "{\"id\":\"c1\",\"items\":[\"a\"]}", ""),
               "{\"action\":\"incoming\"}");
    EXPECT_RUN(es_test_input("delete", "{\"id\":\"c1\",\"items\":[]}", "", "{\"id\":\"c1\",\"items\":[\"a\"]}"),
               "{\"action\":\"existing\"}");

    /* The seed with the roles swapped: the same set, existing's order. */
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"c1\",\"items\":[\"phone\"]}",
                             "{\"id\":\"c1\",\"items\":[\"phone\",\"book\"]}", "{\"id\":\"c1\",\"items\":[]}"),
               MERGED("{\"id\":\"c1\",\"items\":[\"book\"]}"));

    /* Elements compare by their compact text: whitespace does not matter,
     * types do; the result is written compacted. */
    EXPECT_RUN(es_test_input("replace", "{\"items\":[ { \"sku\" : 1 } , 1 ]}",
                             "{\"items\":[{\"sku\":1},\"1\",1]}", "{\"items\":[{\"sku\": 1},[ 2, [3] ]]}"),
               MERGED("{\"items\":[{\"sku\":1},\"1\",[2,[3]]]}"));

    /* Both sides remove, both add the same, duplicates written once. */
    EXPECT_RUN(es_test_input("replace", "{\"items\":[\"a\",\"b\",\"c\"]}",
                             "{\"items\":[\"a\",\"c\",\"d\",\"d\",\"a\"]}", "{\"items\":[\"c\",\"d\",\"a\",\"e\",\"e\"]}"),
               MERGED("{\"items\":[\"a\",\"c\",\"d\",\"e\"]}"));
    EXPECT_RUN(es_test_input("replace", "{\"items\":[\"a\"]}", "{\"items\":[]}", "{\"items\":[]}"),
               MERGED("{\"items\":[]}"));

    /* The other fields are existing's (last writer), order and text kept. */
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"c\",\"owner\":\"ann\",\"items\":[]}",
                             "{\"id\":\"c\", \"note\" : [ 1 ],\"items\":[\"x\"],\"owner\":\"ann\"}",
                             "{\"id\":\"c\",\"owner\":\"bob\",\"items\":[\"y\"],\"extra\":true}"),
               MERGED("{\"id\":\"c\",\"note\":[ 1 ],\"items\":[\"x\",\"y\"],\"owner\":\"ann\"}"));

    /* Missing or null items are an empty set; items is always written. */
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"c\",\"items\":[\"a\"]}",
                             "{\"id\":\"c\",\"items\":[\"a\",\"b\"]}", "{\"id\":\"c\"}"),
               MERGED("{\"id\":\"c\",\"items\":[\"b\"]}"));
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"c\",\"items\":null}", "{\"id\":\"c\"}",
                             "{\"id\":\"c\",\"items\":[\"n\"]}"),
               MERGED("{\"id\":\"c\",\"items\":[\"n\"]}"));
    EXPECT_RUN(es_test_input("insert", NULL, "{\"id\":\"c\"}", "{\"id\":\"c\"}"),
               MERGED("{\"id\":\"c\",\"items\":[]}"));

    /* What cannot be read is a defer with the side and the cause. */
    EXPECT_RUN(es_test_input("replace", "{\"items\":[]}", "{\"items\":[]}", "{\"items\":{\"a\":1}}"),
               DEFER("incoming: items is not an array"));
    EXPECT_RUN(es_test_input("replace", "{\"items\":[]}", "{\"items\":\"a\"}", "{\"items\":[]}"),
               DEFER("existing: items is not an array"));
    EXPECT_RUN(es_test_input("replace", "{\"items\":7}", "{\"items\":[]}", "{\"items\":[]}"),
               DEFER("base: items is not an array"));
    EXPECT_RUN(es_test_input("replace", "{\"items\":[]}", "[\"a\"]", "{\"items\":[]}"),
               DEFER("existing: not a JSON object"));
    EXPECT_RUN(es_test_input("replace", NULL, "1", "1"), DEFER("incoming: not a JSON object"));

    big_case();
}
