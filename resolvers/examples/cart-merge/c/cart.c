/*
 * cart-merge - an edgesync conflict resolver in C (resolvers/sdk/c): the
 * "items" array is merged three ways as a set. The same rules as the Go
 * build (resolvers/examples/cart-merge/go):
 *
 *   - an element is identified by its JSON text without insignificant
 *     whitespace (so {"sku":1} and { "sku": 1 } are the same element, and
 *     "1" and 1 are not);
 *   - result = (existing - removed by incoming) + (added by incoming), that
 *     is (base ∩ incoming ∩ existing) ∪ (incoming − base) ∪ (existing − base):
 *     an element either side removed since the base is removed, an element
 *     either side added is added; without a base (an insert conflict) it is
 *     the union;
 *   - order: existing's order, then incoming's additions in incoming's
 *     order; duplicates are written once; elements are written compacted;
 *   - the other top-level fields are last-writer-wins, and the hub does not
 *     send timestamps: the existing version is the one confirmed last, so
 *     they are taken from existing (its members and their order kept);
 *   - a missing or null "items" is an empty set; "items" is always written;
 *   - a delete wins: an incoming delete is confirmed ("incoming"), an
 *     existing delete stays ("existing");
 *   - "items" that is not an array, or a document that is not an object,
 *     makes the resolver "defer" with the reason.
 *
 * Build: resolvers/build.sh (testdata/resolvers/cart-merge-c.wasm).
 */
#include "edgesync.h"

#include <string.h>

/* set is the elements of one side's items, with a hash table over them. */
typedef struct {
    es_span *elem;    /* the elements, in order */
    uint64_t *hash;   /* their hashes */
    long n;           /* number of elements */
    uint32_t *slot;   /* open addressing: index + 1 of an element, 0 if free */
    uint32_t mask;    /* table size - 1 */
} set;

/* set_find returns the index of an element equal to v (hash h), or -1. */
static long set_find(const set *s, es_span v, uint64_t h) {
    if (s->n == 0)
        return -1;
    for (uint32_t i = (uint32_t)h & s->mask;; i = (i + 1) & s->mask) {
        uint32_t e = s->slot[i];
        if (e == 0)
            return -1;
        if (s->hash[e - 1] == h && es_equal_compact(s->elem[e - 1], v))
            return (long)e - 1;
    }
}

static bool set_has(const set *s, es_span v, uint64_t h) { return set_find(s, v, h) >= 0; }

/* set_add adds element i of s to its table (if no equal one is there). */
static void set_add(set *s, long i) {
    for (uint32_t j = (uint32_t)s->hash[i] & s->mask;; j = (j + 1) & s->mask) {
        uint32_t e = s->slot[j];
        if (e == 0) {
            s->slot[j] = (uint32_t)i + 1;
            return;
        }
        if (s->hash[e - 1] == s->hash[i] && es_equal_compact(s->elem[e - 1], s->elem[i]))
            return;
    }
}

/* set_init allocates a set for up to n elements, or returns -1. */
static int set_init(set *s, long n) {
    uint32_t size = 8;
    while (size < 2 * (uint64_t)n)
        size *= 2;
    s->n = 0;
    s->mask = size - 1;
    s->elem = es_alloc((size_t)n * sizeof *s->elem);
    s->hash = es_alloc((size_t)n * sizeof *s->hash);
    s->slot = es_alloc(size * sizeof *s->slot);
    if ((n > 0 && (s->elem == NULL || s->hash == NULL)) || s->slot == NULL)
        return -1;
    memset(s->slot, 0, size * sizeof *s->slot);
    return 0;
}

/* items reads the "items" array of doc into *s, or returns a reason. */
static const char *items(es_span doc, set *s) {
    es_span arr, e;
    es_iter it;
    switch (es_member(doc, "items", &arr)) {
    case -1:
        return "not a JSON object";
    case 0:
        arr = es_cstr("[]");
    }
    if (es_is_null(arr))
        arr = es_cstr("[]");
    long n = es_count(arr);
    if (n < 0 || es_type_of(arr) != ES_ARRAY)
        return "items is not an array";
    if (n > 1 << 24) /* keeps the sizes below far from overflowing */
        return "more than 16777216 items";
    if (set_init(s, n) < 0)
        return "out of memory";
    es_array_begin(&it, arr);
    while (es_array_next(&it, &e) == 1) {
        s->elem[s->n] = e;
        s->hash[s->n] = es_hash_compact(e);
        set_add(s, s->n++);
    }
    return NULL;
}

/* merged is what write_items needs. */
typedef struct {
    set base, inc, ex;
} merged;

/* write_items writes the merged items array (an es_edit value writer). */
static int write_items(es_output *out, void *arg) {
    const merged *m = arg;
    set added; /* the elements written so far */
    if (set_init(&added, m->ex.n + m->inc.n) < 0 || es_out_char(out, '[') < 0)
        return -1;
    for (int side = 0; side < 2; side++) {
        const set *s = side == 0 ? &m->ex : &m->inc;
        for (long i = 0; i < s->n; i++) {
            es_span e = s->elem[i];
            uint64_t h = s->hash[i];
            bool keep = side == 0
                            /* existing's element: kept unless incoming removed it */
                            ? !set_has(&m->base, e, h) || set_has(&m->inc, e, h)
                            /* incoming's element: an addition existing does not have */
                            : !set_has(&m->base, e, h) && !set_has(&m->ex, e, h);
            if (!keep || set_has(&added, e, h))
                continue;
            if (added.n > 0 && es_out_char(out, ',') < 0)
                return -1;
            added.elem[added.n] = e;
            added.hash[added.n] = h;
            set_add(&added, added.n++);
            if (es_out_compact(out, e) < 0)
                return -1;
        }
    }
    return es_out_char(out, ']');
}

static int side_error(es_output *out, const char *side, const char *why) {
    return es_out_defer(out, side) || es_out_reason(out, ": ") || es_out_reason(out, why);
}

int es_resolve(const es_input *in, es_output *out) {
    if (in->incoming_deleted)
        return es_out_action(out, "incoming");
    if (in->existing_deleted)
        return es_out_action(out, "existing");

    merged m = {0};
    const char *why;
    if ((why = items(in->incoming, &m.inc)) != NULL)
        return side_error(out, "incoming", why);
    if ((why = items(in->existing, &m.ex)) != NULL)
        return side_error(out, "existing", why);
    if (!in->has_base) {
        if (set_init(&m.base, 0) < 0) /* an insert conflict: nothing was removed */
            return es_out_defer(out, "base: out of memory");
    } else if ((why = items(in->base, &m.base)) != NULL)
        return side_error(out, "base", why);

    es_edit edit = {"items", {NULL, 0}, write_items, &m};
    return es_out_action(out, "merge") || es_out_document(out) ||
           es_out_edit(out, in->existing, &edit, 1) ||
           es_out_reason(out, "cart-merge: items merged as a set");
}
