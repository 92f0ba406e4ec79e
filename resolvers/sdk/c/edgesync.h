/*
 * edgesync.h - C SDK for edgesync conflict resolvers (resolvers/ABI.md, v1).
 *
 * Write one function:
 *
 *     #include "edgesync.h"
 *
 *     int es_resolve(const es_input *in, es_output *out) {
 *         if (in->incoming_deleted) return es_out_action(out, "incoming");
 *         ...
 *         return es_out_action(out, "existing");
 *     }
 *
 * and build it with edgesync.c as a WASI reactor (see README.md). The SDK
 * owns the ABI exports, the input buffer and the output buffer; it validates
 * the input before calling es_resolve, and checks what es_resolve wrote: a
 * failed call (es_resolve returned non-zero, a builder error, no action, an
 * invalid document) becomes {"action":"defer","reason":"..."} with the cause.
 *
 * JSON is handled as byte spans over the input: nothing is decoded into a
 * tree and nothing is copied until the output is written. es_run validates
 * the whole input once (RFC 8259 grammar, nesting of at most ES_MAX_DEPTH;
 * like Go's encoding/json, bytes of 0x80 and above inside strings are not
 * checked to be valid UTF-8). Afterwards, during the call, spans inside the
 * input are trusted to be the values the SDK handed out, and walking them
 * only looks for where values end, which is much cheaper in fuel; any other
 * span (one a resolver builds itself, or any span outside es_run) is
 * checked as it is walked. Either way no function reads outside the span
 * it was given.
 *
 * Return conventions: functions returning int return 0 (or a count) on
 * success and -1 on error, unless said otherwise. The es_out_* functions
 * return 0 or -1, and an error is sticky: once one failed, the others do
 * nothing, and the call ends as "defer" with the first error as reason.
 */
#ifndef EDGESYNC_H
#define EDGESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The deepest nesting of arrays and objects accepted, counted from the
 * outermost value scanned (the whole input when the SDK validates it). */
#define ES_MAX_DEPTH 128

/* The longest reason the hub accepts, in bytes; es_out_reason truncates
 * to it (at a character boundary). */
#define ES_MAX_REASON 1024

/* ---------------------------------------------------------------- spans */

/* es_span is a run of bytes, usually the text of one JSON value inside the
 * input. Spans handed out by the SDK hold exactly the value (no surrounding
 * whitespace); p == NULL means "absent". */
typedef struct {
    const char *p;
    size_t n;
} es_span;

/* es_span_of returns the span of n bytes at p. */
static inline es_span es_span_of(const char *p, size_t n) {
    es_span s = {p, n};
    return s;
}

/* es_cstr returns the span of the NUL-terminated string s (not copied). */
es_span es_cstr(const char *s);

typedef enum {
    ES_INVALID = 0, /* absent, empty, or not the start of a JSON value */
    ES_NULL,
    ES_FALSE,
    ES_TRUE,
    ES_NUMBER,
    ES_STRING,
    ES_ARRAY,
    ES_OBJECT
} es_type;

/* es_type_of returns the type of the value v starts with, judging by its
 * first non-space byte only (it does not validate v). */
es_type es_type_of(es_span v);

/* es_is_null reports whether v is absent or the JSON null. */
bool es_is_null(es_span v);

/* ----------------------------------------------------------- validation */

/* es_error describes why JSON was refused: a static message and the byte
 * offset (from the start of the span) where the problem was found. */
typedef struct {
    const char *msg;
    size_t offset;
} es_error;

/* es_parse checks that text is exactly one JSON value, with optional
 * whitespace around it, and sets *value (if not NULL) to the value without
 * the whitespace. On error it returns -1 and fills *err (if not NULL). */
int es_parse(es_span text, es_span *value, es_error *err);

/* es_valid reports whether text is exactly one JSON value. */
bool es_valid(es_span text);

/* ------------------------------------------------------ objects, arrays */

/* es_member finds the top-level member key of the object obj and sets *val
 * to its value. Keys are compared after decoding their escapes; when a key
 * appears more than once the last one wins (as in encoding/json). Returns 1
 * if found, 0 if obj has no such member, -1 if obj is not a valid object.
 * es_member_n takes a key of keylen bytes (which may contain NUL). */
int es_member_n(es_span obj, const char *key, size_t keylen, es_span *val);
static inline int es_member(es_span obj, const char *key, es_span *val) {
    return es_member_n(obj, key, strlen(key), val);
}

/* es_iter walks the elements of an array or the members of an object. */
typedef struct {
    const char *p, *end; /* internal */
    int state, fast;     /* internal */
} es_iter;

/* es_array_begin starts iterating the array arr: 0, or -1 if arr is not an
 * array. Then es_array_next returns 1 and sets *elem for each element, 0 at
 * the end, -1 if the array is malformed (the iteration then stops). */
int es_array_begin(es_iter *it, es_span arr);
int es_array_next(es_iter *it, es_span *elem);

/* es_object_begin / es_object_next do the same for the members of an
 * object; *key is the member's name as a JSON string (with its quotes and
 * escapes: compare it with es_str_eq). */
int es_object_begin(es_iter *it, es_span obj);
int es_object_next(es_iter *it, es_span *key, es_span *val);

/* es_count returns the number of elements of an array or members of an
 * object, or -1 if v is neither or is malformed. */
long es_count(es_span v);

/* ---------------------------------------------------------------- values */

/* es_str_eq reports whether the JSON string s (with quotes), decoded, is
 * exactly the C string cstr (es_str_eq_n: the n bytes at p). False if s is
 * not a valid JSON string. */
bool es_str_eq_n(es_span s, const char *p, size_t n);
static inline bool es_str_eq(es_span s, const char *cstr) {
    return es_str_eq_n(s, cstr, strlen(cstr));
}

/* es_str_decode decodes the JSON string s (with quotes) to UTF-8 (lone
 * surrogates become U+FFFD), writes at most cap bytes to dst, and returns
 * the full decoded length (so that a return value > cap means truncated),
 * or -1 if s is not a valid JSON string. dst is not NUL-terminated. */
long es_str_decode(es_span s, char *dst, size_t cap);

/* es_int64 reads the JSON number v as an integer: 0, or -1 if v is not a
 * number, has a fraction or an exponent ("1.0", "1e3"), or does not fit
 * (the rules of encoding/json for an int64). */
int es_int64(es_span v, int64_t *out);

/* es_double reads the JSON number v: 0, or -1 if v is not a number. It uses
 * strtod, which on wasm32 needs compiler-rt's builtins (README.md). */
int es_double(es_span v, double *out);

/* es_bool reads true or false: 0, or -1 if v is neither. */
int es_bool(es_span v, bool *out);

/* es_equal_compact reports whether a and b have the same text once the
 * whitespace outside strings is removed (json.Compact): the way to compare
 * JSON values "by their exact text". Both should be valid JSON values. */
bool es_equal_compact(es_span a, es_span b);

/* es_compact writes the compact text of v to dst (room for v.n bytes is
 * enough) and returns its length. */
size_t es_compact(es_span v, char *dst);

/* es_hash_compact hashes the compact text of v (64-bit FNV-1a): values that
 * es_equal_compact calls equal have equal hashes. */
uint64_t es_hash_compact(es_span v);

/* es_fmt_int writes v in decimal to buf (at least 21 bytes, not
 * NUL-terminated) and returns the number of bytes written. */
size_t es_fmt_int(char *buf, int64_t v);

/* ------------------------------------------------------- scratch memory */

/* es_alloc returns n bytes (aligned for any type) that stay valid until
 * the end of the current call, or NULL if memory is exhausted. There is no
 * free: all of it is reclaimed when es_resolve returns. */
void *es_alloc(size_t n);

/* ----------------------------------------------------------------- input */

/* es_input is one conflict (resolvers/ABI.md, "Input"), as spans over the
 * input buffer. Every span is a valid JSON value. */
typedef struct {
    es_span raw;         /* the whole input */
    es_span kind;        /* JSON string: "insert", "replace" or "delete" */
    es_span container;   /* JSON string */
    es_span id;          /* JSON string */
    es_span incoming;    /* the incoming document, or null for a delete */
    es_span existing;    /* the existing document, or null for a delete */
    es_span base;        /* the common ancestor, or null when there is none */
    es_span conflicting; /* JSON array of the intermediate versions */
    bool is_tombstone;   /* incoming or existing is a delete */

    /* Derived, for convenience: */
    bool incoming_deleted; /* incoming is null */
    bool existing_deleted; /* existing is null */
    bool has_base;         /* base is not null */
} es_input;

/* es_parse_input validates raw and fills *in: 0, or -1 with *err filled.
 * Members the SDK does not know are ignored; a missing document counts as
 * null, a missing "conflicting" as []. The SDK calls it before es_resolve;
 * it is public for tests. */
int es_parse_input(es_span raw, es_input *in, es_error *err);

/* ---------------------------------------------------------------- output */

/* es_output builds the decision, {"action":..., "document":..., "reason":...},
 * in that order:
 *
 *   1. es_out_action(out, A), A one of incoming, existing, merge, delete,
 *      defer - exactly once, first;
 *   2. with "merge" only: es_out_document(out), then the document itself,
 *      written with es_out_span / es_out_with / es_out_edit / es_out_raw /
 *      es_out_char / es_out_string / es_out_int / es_out_compact;
 *   3. optionally es_out_reason* (each call appends to the reason).
 *
 * The SDK closes the object and checks that the document is a valid JSON
 * object when es_resolve returns. */
typedef struct es_output es_output;

int es_out_action(es_output *out, const char *action);
int es_out_document(es_output *out);

/* Document writers (only between es_out_document and the reason). */
int es_out_raw(es_output *out, const char *p, size_t n); /* bytes as is */
int es_out_span(es_output *out, es_span v);              /* v as is */
int es_out_compact(es_output *out, es_span v);           /* v without whitespace */
int es_out_char(es_output *out, char c);                 /* one byte: [ ] { } , : */
int es_out_string(es_output *out, const char *s, size_t n); /* a JSON string */
int es_out_cstring(es_output *out, const char *s);          /* a JSON string */
int es_out_int(es_output *out, int64_t v);                  /* a JSON number */

/* es_edit changes one top-level member when an object is copied: with
 * write != NULL the new value is written by write(out, arg); otherwise with
 * value.p != NULL it is value (raw JSON); otherwise the member is removed. */
typedef struct {
    const char *key;
    es_span value;
    int (*write)(es_output *out, void *arg);
    void *arg;
} es_edit;

/* es_out_edit writes a copy of the object obj with edits applied: members
 * keep their order and their text; an edited member keeps its place (its
 * later duplicates are dropped); an edit of a key obj does not have is
 * appended, in the order of edits. Fails if obj is not a valid object. */
int es_out_edit(es_output *out, es_span obj, const es_edit *edits, size_t n);

/* es_out_with copies obj with member key set to value (raw JSON). */
int es_out_with(es_output *out, es_span obj, const char *key, es_span value);

/* es_out_without copies obj without member key. */
int es_out_without(es_output *out, es_span obj, const char *key);

/* Reason writers: each appends to the reason (escaped, truncated to
 * ES_MAX_REASON bytes, invalid UTF-8 replaced by U+FFFD). */
int es_out_reason(es_output *out, const char *text);
int es_out_reason_n(es_output *out, const char *text, size_t n);
int es_out_reason_int(es_output *out, int64_t v);

/* es_out_defer is es_out_action(out, "defer") then es_out_reason(out, reason). */
int es_out_defer(es_output *out, const char *reason);

/* es_out_error reports whether a builder call failed, with its message. */
const char *es_out_error(const es_output *out);

/* ------------------------------------------------------------- the hook */

/* es_resolve is the resolver: the one function a resolver defines. Return 0
 * when out holds the decision; anything else makes the call a "defer". */
int es_resolve(const es_input *in, es_output *out);

/* es_run performs one call as the edgesync_resolve export does: it
 * validates the input, calls es_resolve and returns the output (valid until
 * the next es_run), setting *out_n to its length. For native tests. */
const char *es_run(const char *input, size_t n, size_t *out_n);

#ifdef __cplusplus
}
#endif

#endif /* EDGESYNC_H */
