/*
 * counter - an edgesync conflict resolver in C (resolvers/sdk/c): the
 * numeric field "count" of concurrent versions is merged as
 *
 *     base + (incoming - base) + (existing - base)
 *
 * so that offline increments on several edges add up exactly. The same
 * rules as the Go build (resolvers/examples/counter/go):
 *
 *   - a delete wins: an incoming delete is confirmed ("incoming"), an
 *     existing delete stays ("existing");
 *   - an insert conflict has no base: the base count is 0, both counts add;
 *   - a missing or null "count" counts as 0;
 *   - the result is the existing document with "count" replaced (its other
 *     members and their order kept): action "merge";
 *   - a count that is not an integer, a document that is not an object, or
 *     a total outside int64 makes the resolver "defer" with the reason.
 *
 * Build: resolvers/build.sh (testdata/resolvers/counter-c.wasm).
 */
#include "edgesync.h"

/* count_of reads the integer member "count" of doc into *n (0 if absent or
 * null), or returns a reason why it cannot. */
static const char *count_of(es_span doc, int64_t *n) {
    es_span v;
    *n = 0;
    switch (es_member(doc, "count", &v)) {
    case -1:
        return "not a JSON object";
    case 0:
        return NULL;
    }
    if (es_is_null(v))
        return NULL;
    if (es_int64(v, n) < 0)
        return "count is not an integer that fits in 64 bits";
    return NULL;
}

/* side writes a defer naming the side whose count could not be read. */
static int side_error(es_output *out, const char *side, const char *why) {
    return es_out_defer(out, side) || es_out_reason(out, ": ") || es_out_reason(out, why);
}

int es_resolve(const es_input *in, es_output *out) {
    if (in->incoming_deleted)
        return es_out_action(out, "incoming");
    if (in->existing_deleted)
        return es_out_action(out, "existing");

    int64_t inc, ex, base = 0;
    const char *why;
    if ((why = count_of(in->incoming, &inc)) != NULL)
        return side_error(out, "incoming", why);
    if ((why = count_of(in->existing, &ex)) != NULL)
        return side_error(out, "existing", why);
    if (in->has_base && (why = count_of(in->base, &base)) != NULL)
        return side_error(out, "base", why);

    /* inc + ex - base, computed exactly, then checked to fit. */
    __int128 total = (__int128)inc + ex - base;
    if (total > INT64_MAX || total < INT64_MIN)
        return es_out_defer(out, "counter: the merged count overflows int64");

    char buf[21];
    es_span count = es_span_of(buf, es_fmt_int(buf, (int64_t)total));
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_with(out, in->existing, "count", count) ||
           es_out_reason(out, "counter: base ") || es_out_reason_int(out, base) ||
           es_out_reason(out, " + both deltas");
}
