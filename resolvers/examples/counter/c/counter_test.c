/*
 * counter_test.c - native tests of counter.c (built and run by
 * resolvers/sdk/c/sdk_test.go, with edgesync.c and counter.c).
 */
#include "es_test.h"

#define MERGED(doc, base)                                                                \
    "{\"action\":\"merge\",\"document\":" doc ",\"reason\":\"counter: base " base          \
    " + both deltas\"}"
#define DEFER(reason) "{\"action\":\"defer\",\"reason\":\"" reason "\"}"

static void es_test_main(void) {
    /* The cases of wasmhost's TestExamples, exactly. */
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"k\",\"count\":10}", "{\"id\":\"k\",\"count\":13}",
                             "{\"id\":\"k\",\"count\":11}"),
               MERGED("{\"id\":\"k\",\"count\":14}", "10"));
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"k\",\"count\":10,\"label\":\"x\"}",
                             "{\"id\":\"k\",\"count\":7,\"label\":\"x\"}",
                             "{\"id\":\"k\",\"count\":12,\"label\":\"x\"}"),
               MERGED("{\"id\":\"k\",\"count\":9,\"label\":\"x\"}", "10"));
    EXPECT_RUN(es_test_input("insert", NULL, "{\"id\":\"k\",\"count\":2}", "{\"id\":\"k\",\"count\":3}"),
               MERGED("{\"id\":\"k\",\"count\":5}", "0"));
    EXPECT_RUN(es_test_input("delete", "{\"id\":\"k\",\"count\":1}", "{\"id\":\"k\",\"count\":2}", ""),
               "{\"action\":\"incoming\"}");

    /* A delete wins, whichever side it is on. */
    EXPECT_RUN(es_test_input("delete", "{\"id\":\"k\",\"count\":1}", "", "{\"id\":\"k\",\"count\":2}"),
               "{\"action\":\"existing\"}");
    EXPECT_RUN(es_test_input("delete", "{\"id\":\"k\"}", "", ""), "{\"action\":\"incoming\"}");

    /* The other members are existing's, order and text kept; count is
     * replaced where it is (a later duplicate dropped) or appended. */
    EXPECT_RUN(es_test_input("replace", "{\"count\":1}",
                             "{\"id\":\"k\", \"count\" : 4 , \"meta\":{ \"by\": \"ann\" },\"count\":5}",
                             "{\"count\":2,\"meta\":{\"by\":\"bob\"}}"),
               MERGED("{\"id\":\"k\",\"count\":6,\"meta\":{ \"by\": \"ann\" }}", "1"));
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"k\",\"count\":1}", "{\"id\":\"k\"}",
                             "{\"id\":\"k\",\"count\":3}"),
               MERGED("{\"id\":\"k\",\"count\":2}", "1"));

    /* A missing or null count is 0. */
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"k\",\"count\":5}", "{\"id\":\"k\",\"count\":6}",
                             "{\"id\":\"k\"}"),
               MERGED("{\"id\":\"k\",\"count\":1}", "5"));
    EXPECT_RUN(es_test_input("replace", "{\"id\":\"k\",\"count\":null}", "{\"id\":\"k\",\"count\":null}",
                             "{\"id\":\"k\",\"count\":-4}"),
               MERGED("{\"id\":\"k\",\"count\":-4}", "0"));

    /* Exact 64-bit arithmetic: large intermediate values are fine, a total
     * that does not fit is a defer. */
    EXPECT_RUN(es_test_input("replace", "{\"count\":-9223372036854775808}",
                             "{\"count\":-9223372036854775808}", "{\"count\":9223372036854775807}"),
               MERGED("{\"count\":9223372036854775807}", "-9223372036854775808"));
    EXPECT_RUN(es_test_input("replace", "{\"count\":0}", "{\"count\":9223372036854775807}",
                             "{\"count\":1}"),
               DEFER("counter: the merged count overflows int64"));

    /* What cannot be read is a defer with the side and the cause. */
    EXPECT_RUN(es_test_input("replace", "{\"count\":1}", "{\"count\":1}", "{\"count\":1.5}"),
               DEFER("incoming: count is not an integer that fits in 64 bits"));
    EXPECT_RUN(es_test_input("replace", "{\"count\":1}", "{\"count\":\"7\"}", "{\"count\":1}"),
               DEFER("existing: count is not an integer that fits in 64 bits"));
    EXPECT_RUN(es_test_input("replace", "{\"count\":1e2}", "{\"count\":1}", "{\"count\":1}"),
               DEFER("base: count is not an integer that fits in 64 bits"));
    EXPECT_RUN(es_test_input("replace", "{\"count\":1}", "{\"count\":99999999999999999999}",
                             "{\"count\":1}"),
               DEFER("existing: count is not an integer that fits in 64 bits"));
    EXPECT_RUN(es_test_input("replace", "{\"count\":1}", "[1]", "{\"count\":1}"),
               DEFER("existing: not a JSON object"));
    EXPECT_RUN(es_test_input("replace", "5", "{\"count\":1}", "{\"count\":1}"),
               DEFER("base: not a JSON object"));
    EXPECT_RUN(es_test_input("replace", NULL, "{\"count\":1}", "\"x\""),
               DEFER("incoming: not a JSON object"));
}
