/* The pprof writer (src/output/writer_pprof.c) on fixed aggregates: its output is
 * gunzipped with zlib and decoded by a small reader of the protobuf wire
 * format below, written from profile.proto's field numbers, then the
 * string table, samples, locations, functions and the profile's own
 * fields are compared with what they must be, exactly. Names carry what
 * breaks other formats (';', quotes, '<', '&', a newline, non-ASCII): here
 * they must come through as they are. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "pyflame/profile/agg.h"
#include "pyflame/base/intern.h"
#include "pyflame/output/writer.h"

#include "frames_fixture.h"

/* --- building the aggregate ---------------------------------------------- */





/* --- writing and gunzipping ---------------------------------------------- */

static uint8_t *render(const struct pf_agg *agg, const struct pf_intern *names,
                       const struct pf_write_opts *o, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    assert_int_equal(pf_writer_pprof.write(f, agg, names, o), PF_OK);
    assert_int_equal(fclose(f), 0);
    *len = n;
    return (uint8_t *)buf;
}

static uint8_t *gunzip(const uint8_t *gz, size_t len, size_t *out_len)
{
    /* A gzip member (RFC 1952), not a bare zlib stream. */
    assert_true(len >= 18);
    assert_int_equal(gz[0], 0x1f);
    assert_int_equal(gz[1], 0x8b);
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    size_t cap = 1 << 16, n = 0;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)gz;
    zs.avail_in = (uInt)len;
    int rc;
    do {
        if (n == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        zs.next_out = out + n;
        zs.avail_out = (uInt)(cap - n);
        rc = inflate(&zs, Z_NO_FLUSH);
        assert_true(rc == Z_OK || rc == Z_STREAM_END);
        n = cap - zs.avail_out;
    } while (rc != Z_STREAM_END);
    /* One member, nothing after it. */
    assert_int_equal(zs.avail_in, 0);
    inflateEnd(&zs);
    *out_len = n;
    return out;
}

/* --- a reader of the wire format ----------------------------------------- */

struct rd {
    const uint8_t *p, *end;
};

static uint64_t rd_varint(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        assert_true(r->p < r->end);
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    fail_msg("varint longer than 10 bytes");
    return 0;
}

/* The next field's number and wire type; false at the end. */
static bool rd_field(struct rd *r, uint32_t *field, int *wire)
{
    if (r->p == r->end)
        return false;
    uint64_t tag = rd_varint(r);
    *field = (uint32_t)(tag >> 3);
    *wire = (int)(tag & 7);
    assert_true(*field > 0);
    return true;
}

/* A length-delimited field's bytes. */
static struct rd rd_len(struct rd *r, int wire)
{
    assert_int_equal(wire, 2);
    uint64_t n = rd_varint(r);
    assert_true(n <= (uint64_t)(r->end - r->p));
    struct rd sub = {r->p, r->p + n};
    r->p += n;
    return sub;
}

static uint64_t rd_scalar(struct rd *r, int wire)
{
    assert_int_equal(wire, 0);
    return rd_varint(r);
}

/* Append v to a growing array of uint64_t. */
static void push(uint64_t **a, size_t *n, uint64_t v)
{
    *a = realloc(*a, (*n + 1) * sizeof(**a));
    assert_non_null(*a);
    (*a)[(*n)++] = v;
}

/* A packed repeated varint field (what the writer emits; proto3's default). */
static void rd_packed(struct rd *r, int wire, uint64_t **a, size_t *n)
{
    struct rd sub = rd_len(r, wire);
    while (sub.p < sub.end)
        push(a, n, rd_varint(&sub));
}

struct label {
    int64_t key, str, num;
};

struct sample {
    uint64_t *locs;
    size_t nlocs;
    uint64_t *values;
    size_t nvalues;
    struct label labels[4];
    size_t nlabels;
};

struct location {
    uint64_t id, mapping_id, address;
    uint64_t function_id;
    int64_t line;
    size_t nlines;
};

struct function {
    uint64_t id;
    int64_t name, system_name, filename, start_line;
};

struct mapping {
    uint64_t id;
    bool has_functions, has_filenames, has_line_numbers;
};

struct profile {
    int64_t sample_type[4][2];
    size_t nsample_type;
    struct sample *samples;
    size_t nsamples;
    struct location *locations;
    size_t nlocations;
    struct function *functions;
    size_t nfunctions;
    struct mapping mappings[2];
    size_t nmappings;
    char **strings;
    size_t nstrings;
    int64_t time_nanos, duration_nanos, period, period_type[2];
    int64_t comment[4];
    size_t ncomment;
};

static void value_type(struct rd r, int64_t vt[2])
{
    uint32_t field;
    int wire;
    vt[0] = vt[1] = 0;
    while (rd_field(&r, &field, &wire)) {
        assert_true(field == 1 || field == 2);
        vt[field - 1] = (int64_t)rd_scalar(&r, wire);
    }
}

static void decode_label(struct rd r, struct label *l)
{
    uint32_t field;
    int wire;
    *l = (struct label){0};
    while (rd_field(&r, &field, &wire)) {
        int64_t v = (int64_t)rd_scalar(&r, wire);
        if (field == 1)
            l->key = v;
        else if (field == 2)
            l->str = v;
        else if (field == 3)
            l->num = v;
        else
            fail_msg("Label field %u", field);
    }
}

static void decode_sample(struct rd r, struct sample *s)
{
    uint32_t field;
    int wire;
    *s = (struct sample){0};
    while (rd_field(&r, &field, &wire)) {
        if (field == 1)
            rd_packed(&r, wire, &s->locs, &s->nlocs);
        else if (field == 2)
            rd_packed(&r, wire, &s->values, &s->nvalues);
        else if (field == 3) {
            assert_true(s->nlabels < 4);
            decode_label(rd_len(&r, wire), &s->labels[s->nlabels++]);
        } else
            fail_msg("Sample field %u", field);
    }
}

static void decode_line(struct rd r, struct location *l)
{
    uint32_t field;
    int wire;
    while (rd_field(&r, &field, &wire)) {
        uint64_t v = rd_scalar(&r, wire);
        if (field == 1)
            l->function_id = v;
        else if (field == 2)
            l->line = (int64_t)v;
        else
            fail_msg("Line field %u", field);
    }
}

static void decode_location(struct rd r, struct location *l)
{
    uint32_t field;
    int wire;
    *l = (struct location){0};
    while (rd_field(&r, &field, &wire)) {
        if (field == 1)
            l->id = rd_scalar(&r, wire);
        else if (field == 2)
            l->mapping_id = rd_scalar(&r, wire);
        else if (field == 3)
            l->address = rd_scalar(&r, wire);
        else if (field == 4) {
            decode_line(rd_len(&r, wire), l);
            l->nlines++;
        } else
            fail_msg("Location field %u", field);
    }
}

static void decode_function(struct rd r, struct function *f)
{
    uint32_t field;
    int wire;
    *f = (struct function){0};
    while (rd_field(&r, &field, &wire)) {
        uint64_t v = rd_scalar(&r, wire);
        switch (field) {
        case 1:
            f->id = v;
            break;
        case 2:
            f->name = (int64_t)v;
            break;
        case 3:
            f->system_name = (int64_t)v;
            break;
        case 4:
            f->filename = (int64_t)v;
            break;
        case 5:
            f->start_line = (int64_t)v;
            break;
        default:
            fail_msg("Function field %u", field);
        }
    }
}

static void decode_mapping(struct rd r, struct mapping *m)
{
    uint32_t field;
    int wire;
    *m = (struct mapping){0};
    while (rd_field(&r, &field, &wire)) {
        uint64_t v = rd_scalar(&r, wire);
        switch (field) {
        case 1:
            m->id = v;
            break;
        case 7:
            m->has_functions = v;
            break;
        case 8:
            m->has_filenames = v;
            break;
        case 9:
            m->has_line_numbers = v;
            break;
        default:
            fail_msg("Mapping field %u (no address range expected)", field);
        }
    }
}

#define GROW(arr, n)                                                                               \
    ((arr) = realloc((arr), ((n) + 1) * sizeof(*(arr))), assert_non_null(arr), &(arr)[(n)++])

static void decode(const uint8_t *data, size_t len, struct profile *p)
{
    struct rd r = {data, data + len};
    uint32_t field;
    int wire;
    *p = (struct profile){0};
    while (rd_field(&r, &field, &wire)) {
        switch (field) {
        case 1:
            assert_true(p->nsample_type < 4);
            value_type(rd_len(&r, wire), p->sample_type[p->nsample_type++]);
            break;
        case 2:
            decode_sample(rd_len(&r, wire), GROW(p->samples, p->nsamples));
            break;
        case 3:
            assert_true(p->nmappings < 2);
            decode_mapping(rd_len(&r, wire), &p->mappings[p->nmappings++]);
            break;
        case 4:
            decode_location(rd_len(&r, wire), GROW(p->locations, p->nlocations));
            break;
        case 5:
            decode_function(rd_len(&r, wire), GROW(p->functions, p->nfunctions));
            break;
        case 6: {
            struct rd s = rd_len(&r, wire);
            char *copy = malloc((size_t)(s.end - s.p) + 1);
            assert_non_null(copy);
            memcpy(copy, s.p, (size_t)(s.end - s.p));
            copy[s.end - s.p] = '\0';
            /* No NUL inside: the names given had none. */
            assert_int_equal(strlen(copy), (size_t)(s.end - s.p));
            *GROW(p->strings, p->nstrings) = copy;
            break;
        }
        case 9:
            p->time_nanos = (int64_t)rd_scalar(&r, wire);
            break;
        case 10:
            p->duration_nanos = (int64_t)rd_scalar(&r, wire);
            break;
        case 11:
            value_type(rd_len(&r, wire), p->period_type);
            break;
        case 12:
            p->period = (int64_t)rd_scalar(&r, wire);
            break;
        case 13:
            assert_true(p->ncomment < 4);
            p->comment[p->ncomment++] = (int64_t)rd_scalar(&r, wire);
            break;
        default:
            fail_msg("Profile field %u", field);
        }
    }
}

static void profile_free(struct profile *p)
{
    for (size_t i = 0; i < p->nsamples; i++) {
        free(p->samples[i].locs);
        free(p->samples[i].values);
    }
    for (size_t i = 0; i < p->nstrings; i++)
        free(p->strings[i]);
    free(p->samples);
    free(p->locations);
    free(p->functions);
    free(p->strings);
}

static struct profile *load(const struct pf_agg *agg, const struct pf_intern *names,
                            const struct pf_write_opts *o)
{
    size_t gzlen, len;
    uint8_t *gz = render(agg, names, o, &gzlen);
    uint8_t *raw = gunzip(gz, gzlen, &len);
    struct profile *p = malloc(sizeof(*p));
    assert_non_null(p);
    decode(raw, len, p);
    free(gz);
    free(raw);
    return p;
}

static void unload(struct profile *p)
{
    profile_free(p);
    free(p);
}

/* --- checks --------------------------------------------------------------- */

static void check_strings(const struct profile *p, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < p->nstrings; i++)
        if (strcmp(p->strings[i], want[i]) != 0)
            fail_msg("string_table[%zu] is \"%s\", want \"%s\"", i, p->strings[i], want[i]);
    assert_int_equal(p->nstrings, n);
}

static void check_sample(const struct sample *s, const uint64_t *locs, size_t nlocs, uint64_t count,
                         uint64_t ns)
{
    assert_int_equal(s->nlocs, nlocs);
    if (nlocs)
        assert_memory_equal(s->locs, locs, nlocs * sizeof(uint64_t));
    assert_int_equal(s->nvalues, 2);
    assert_int_equal(s->values[0], count);
    assert_int_equal(s->values[1], ns);
}

static void check_location(const struct profile *p, uint64_t id, uint64_t function, int64_t line)
{
    assert_true(id >= 1 && id <= p->nlocations);
    const struct location *l = &p->locations[id - 1];
    assert_int_equal(l->id, id);
    assert_int_equal(l->mapping_id, 1);
    assert_int_equal(l->address, 0);
    assert_int_equal(l->nlines, 1);
    assert_int_equal(l->function_id, function);
    assert_int_equal(l->line, line);
}

static void check_function(const struct profile *p, uint64_t id, int64_t name, int64_t file)
{
    assert_true(id >= 1 && id <= p->nfunctions);
    const struct function *f = &p->functions[id - 1];
    assert_int_equal(f->id, id);
    assert_int_equal(f->name, name);
    /* None: pprof would demangle a name equal to it (src/output/writer_pprof.c). */
    assert_int_equal(f->system_name, 0);
    assert_int_equal(f->filename, file);
    assert_int_equal(f->start_line, 0);
}

static void check_header(const struct profile *p, int64_t period)
{
    /* samples/count, cpu/nanoseconds; period cpu/nanoseconds. */
    assert_int_equal(p->nsample_type, 2);
    assert_int_equal(p->sample_type[0][0], 1);
    assert_int_equal(p->sample_type[0][1], 2);
    assert_int_equal(p->sample_type[1][0], 3);
    assert_int_equal(p->sample_type[1][1], 4);
    assert_int_equal(p->period_type[0], 3);
    assert_int_equal(p->period_type[1], 4);
    assert_int_equal(p->period, period);
    assert_int_equal(p->nmappings, 1);
    assert_int_equal(p->mappings[0].id, 1);
    assert_true(p->mappings[0].has_functions);
    assert_true(p->mappings[0].has_filenames);
    assert_true(p->mappings[0].has_line_numbers);
}

/* --- tests ---------------------------------------------------------------- */

#define FILE_MOD "/app/we;ird \"dir\"/main.py"
#define FILE_NL "/app/\xc3\xbcn\xc3\xaf.py"       /* "ünï" */
#define NAME_NL "na\xc3\xafve\nname \xe2\x9c\x93" /* "naïve", a newline, "name ✓" */

static void pprof_fixed(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);

    uint32_t mod = py(t, FILE_MOD, "<module>", 30);
    uint32_t run = py(t, "/app/main.py", "run&go<T>", 12);
    uint32_t nl = py(t, FILE_NL, NAME_NL, 5);
    uint32_t nl7 = py(t, FILE_NL, NAME_NL, 7); /* the same function, another line */
    uint32_t thr = pseudo(t, "(thread 42 worker;1)");
    uint32_t trunc = pseudo(t, "(truncated)");
    uint32_t native = frame(t, PF_FRAME_NATIVE, NULL, "memcpy (libc.so.6)", 0);
    uint32_t s1[] = {mod, run, nl}, s2[] = {mod, run, nl7}, s3[] = {thr, mod, run},
             s4[] = {trunc, run, native};
    assert_int_equal(pf_agg_add(a, s1, 3, 5), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 3, 2), PF_OK);
    assert_int_equal(pf_agg_add(a, s3, 3, 4), PF_OK);
    assert_int_equal(pf_agg_add(a, s4, 3, 1), PF_OK);
    pf_agg_add_idle(a, 3);
    pf_agg_add_failed(a, PF_FAIL_MEMORY, 1);
    pf_agg_add_failed(a, PF_FAIL_GIL_MOVED, 2);

    struct pf_write_opts o = {.include_idle = true,
                              .interval = 0.01,
                              .duration = 1.5,
                              .start_unix_ns = 1700000000123456789,
                              .title = "pid 1234 <&>"};
    struct profile *p = load(a, t, &o);

    /* The order strings are first needed in: the sample types, then each
     * stack's new functions leaf first (name, then file) and labels, then
     * (idle), (failed) and its reasons, then the comment. */
    const char *const strings[] = {
        "",
        "samples",
        "count",
        "cpu",
        "nanoseconds",
        NAME_NL, /* 5 */
        FILE_NL,
        "run&go<T>",
        "/app/main.py",
        "<module>",
        FILE_MOD, /* 10 */
        "thread",
        "(thread 42 worker;1)",
        "tid",
        "memcpy (libc.so.6)",
        "(truncated)", /* 15 */
        "(idle)",
        "(failed)",
        "reason",
        pf_fail_reason_name(PF_FAIL_MEMORY),
        pf_fail_reason_name(PF_FAIL_GIL_MOVED), /* 20 */
        "pid 1234 <&>",
    };
    check_strings(p, strings, sizeof(strings) / sizeof(strings[0]));
    check_header(p, 10000000);
    assert_int_equal(p->duration_nanos, 1500000000);
    assert_int_equal(p->time_nanos, 1700000000123456789);
    assert_int_equal(p->ncomment, 1);
    assert_int_equal(p->comment[0], 21);

    /* Functions: one per (name, file); pseudo and native frames have no file. */
    assert_int_equal(p->nfunctions, 7);
    check_function(p, 1, 5, 6);  /* NAME_NL */
    check_function(p, 2, 7, 8);  /* run&go<T> */
    check_function(p, 3, 9, 10); /* <module> */
    check_function(p, 4, 14, 0); /* memcpy (libc.so.6) */
    check_function(p, 5, 15, 0); /* (truncated) */
    check_function(p, 6, 16, 0); /* (idle) */
    check_function(p, 7, 17, 0); /* (failed) */

    /* Locations: one per frame, in the order first met; the thread root is none. */
    assert_int_equal(p->nlocations, 8);
    check_location(p, 1, 1, 5);  /* nl */
    check_location(p, 2, 2, 12); /* run */
    check_location(p, 3, 3, 30); /* mod */
    check_location(p, 4, 1, 7);  /* nl7 */
    check_location(p, 5, 4, 0);  /* native */
    check_location(p, 6, 5, 0);  /* (truncated) */
    check_location(p, 7, 6, 0);  /* (idle) */
    check_location(p, 8, 7, 0);  /* (failed) */

    /* Samples: the aggregate's stacks in its order, leaf first, then idle
     * and failed (one per reason). */
    assert_int_equal(p->nsamples, 7);
    check_sample(&p->samples[0], (const uint64_t[]){1, 2, 3}, 3, 5, 50000000);
    check_sample(&p->samples[1], (const uint64_t[]){4, 2, 3}, 3, 2, 20000000);
    check_sample(&p->samples[2], (const uint64_t[]){2, 3}, 2, 4, 40000000);
    check_sample(&p->samples[3], (const uint64_t[]){5, 2, 6}, 3, 1, 10000000);
    check_sample(&p->samples[4], (const uint64_t[]){7}, 1, 3, 30000000);
    check_sample(&p->samples[5], (const uint64_t[]){8}, 1, 1, 10000000);
    check_sample(&p->samples[6], (const uint64_t[]){8}, 1, 2, 20000000);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(p->samples[i].nlabels, i == 2 ? 2 : i >= 5 ? 1 : 0);
    /* The thread's: thread = its label, tid = 42. */
    assert_int_equal(p->samples[2].labels[0].key, 11);
    assert_int_equal(p->samples[2].labels[0].str, 12);
    assert_int_equal(p->samples[2].labels[0].num, 0);
    assert_int_equal(p->samples[2].labels[1].key, 13);
    assert_int_equal(p->samples[2].labels[1].str, 0);
    assert_int_equal(p->samples[2].labels[1].num, 42);
    /* The failed ones': reason = its name. */
    assert_int_equal(p->samples[5].labels[0].key, 18);
    assert_int_equal(p->samples[5].labels[0].str, 19);
    assert_int_equal(p->samples[6].labels[0].key, 18);
    assert_int_equal(p->samples[6].labels[0].str, 20);

    unload(p);

    /* -x: no idle sample, and "(idle)" nowhere. */
    o.include_idle = false;
    p = load(a, t, &o);
    assert_int_equal(p->nsamples, 6);
    assert_int_equal(p->nlocations, 7);
    for (size_t i = 0; i < p->nstrings; i++)
        assert_string_not_equal(p->strings[i], "(idle)");
    unload(p);

    pf_agg_free(a);
    pf_intern_free(t);
}

static int64_t string_index(const struct profile *p, const char *text)
{
    for (size_t i = 0; i < p->nstrings; i++)
        if (strcmp(p->strings[i], text) == 0)
            return (int64_t)i;
    fail_msg("string %s not in the table", text);
    return -1;
}

/* --subprocesses: "(process PID COMMAND)", and a thread root after it, are
 * labels (process, pid; thread, tid), not locations. */
static void pprof_process_roots(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    uint32_t mod = py(t, FILE_MOD, "<module>", 30);
    uint32_t proc = pseudo(t, "(process 4321 gunicorn: worker [app])");
    uint32_t thr = pseudo(t, "(thread 4322 worker)");
    uint32_t s1[] = {proc, thr, mod}, s2[] = {proc, mod};
    assert_int_equal(pf_agg_add(a, s1, 3, 2), PF_OK);
    assert_int_equal(pf_agg_add(a, s2, 2, 1), PF_OK);
    struct pf_write_opts o = {.interval = 0.01, .duration = 1};
    struct profile *p = load(a, t, &o);

    assert_int_equal(p->nlocations, 1); /* <module> alone */
    assert_int_equal(p->nsamples, 2);
    check_sample(&p->samples[0], (const uint64_t[]){1}, 1, 2, 20000000);
    check_sample(&p->samples[1], (const uint64_t[]){1}, 1, 1, 10000000);
    assert_int_equal(p->samples[0].nlabels, 4);
    assert_int_equal(p->samples[0].labels[0].key, string_index(p, "process"));
    assert_int_equal(p->samples[0].labels[0].str,
                     string_index(p, "(process 4321 gunicorn: worker [app])"));
    assert_int_equal(p->samples[0].labels[1].key, string_index(p, "pid"));
    assert_int_equal(p->samples[0].labels[1].num, 4321);
    assert_int_equal(p->samples[0].labels[2].key, string_index(p, "thread"));
    assert_int_equal(p->samples[0].labels[3].key, string_index(p, "tid"));
    assert_int_equal(p->samples[0].labels[3].num, 4322);
    assert_int_equal(p->samples[1].nlabels, 2);
    assert_int_equal(p->samples[1].labels[1].num, 4321);
    unload(p);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* Nothing sampled: still a valid profile, its string table the header's. */
static void pprof_empty(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    pf_agg_add_idle(a, 9); /* left out with -x */
    struct pf_write_opts o = {.interval = 0.001};
    struct profile *p = load(a, t, &o);
    const char *const strings[] = {"", "samples", "count", "cpu", "nanoseconds"};
    check_strings(p, strings, 5);
    check_header(p, 1000000);
    assert_int_equal(p->nsamples, 0);
    assert_int_equal(p->nlocations, 0);
    assert_int_equal(p->nfunctions, 0);
    assert_int_equal(p->ncomment, 0);
    assert_int_equal(p->time_nanos, 0);
    assert_int_equal(p->duration_nanos, 0);
    unload(p);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* A deep stack and many of them: lengths of several bytes at every level
 * (the sample's packed ids, the sample, the profile), and one location per
 * frame however many stacks share it. */
static void pprof_large(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    enum { DEPTH = 3000, STACKS = 500 };
    uint32_t *deep = malloc(DEPTH * sizeof(*deep));
    assert_non_null(deep);
    for (int i = 0; i < DEPTH; i++)
        deep[i] = py(t, "/deep.py", "recurse", 1 + i % 100);
    assert_int_equal(pf_agg_add(a, deep, DEPTH, 1000000), PF_OK);
    for (int i = 0; i < STACKS; i++) {
        uint32_t s[] = {deep[0], py(t, "/many.py", "f", i + 1)};
        assert_int_equal(pf_agg_add(a, s, 2, (uint64_t)i + 1), PF_OK);
    }
    struct pf_write_opts o = {.interval = 0.5};
    struct profile *p = load(a, t, &o);
    assert_int_equal(p->nsamples, 1 + STACKS);
    assert_int_equal(p->nlocations, 100 + STACKS);
    assert_int_equal(p->nfunctions, 2);
    const struct sample *s = &p->samples[0];
    assert_int_equal(s->nlocs, DEPTH);
    /* Leaf first: frame DEPTH-1 has line 1 + (DEPTH-1) % 100 = 100. */
    for (size_t d = 0; d < DEPTH; d++)
        assert_int_equal(p->locations[s->locs[d] - 1].line, 1 + (DEPTH - 1 - d) % 100);
    assert_int_equal(s->values[0], 1000000);
    assert_int_equal(s->values[1], 1000000ull * 500000000ull);
    for (int i = 0; i < STACKS; i++) {
        const struct sample *m = &p->samples[1 + i];
        assert_int_equal(m->nlocs, 2);
        assert_int_equal(m->locs[1], s->locs[DEPTH - 1]); /* the shared root */
        assert_int_equal(p->locations[m->locs[0] - 1].line, i + 1);
        assert_int_equal(m->values[0], i + 1);
    }
    unload(p);
    free(deep);
    pf_agg_free(a);
    pf_intern_free(t);
}

/* The same aggregate gives the same bytes (gzip's header has no time), and
 * a write that cannot reach its file is an error. */
static void pprof_bytes(void **state)
{
    (void)state;
    struct pf_intern *t;
    struct pf_agg *a;
    assert_int_equal(pf_intern_new(&t), PF_OK);
    assert_int_equal(pf_agg_new(&a), PF_OK);
    for (int i = 0; i < 2000; i++) {
        uint32_t s[] = {py(t, "/a.py", "f", i), py(t, "/b.py", "g", i % 13)};
        assert_int_equal(pf_agg_add(a, s, 2, 1), PF_OK);
    }
    struct pf_write_opts o = {.interval = 0.01, .include_idle = true};
    size_t n1, n2;
    uint8_t *b1 = render(a, t, &o, &n1), *b2 = render(a, t, &o, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);

    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(pf_writer_pprof.write(full, a, t, &o), PF_ERR_IO);
        fclose(full);
    }
    pf_agg_free(a);
    pf_intern_free(t);
}

/* -f pprof and -o X.pb.gz find it. */
static void pprof_registered(void **state)
{
    (void)state;
    assert_ptr_equal(pf_writer_find("pprof"), &pf_writer_pprof);
    assert_ptr_equal(pf_writer_for_path("/tmp/cpu.pb.gz"), &pf_writer_pprof);
    assert_non_null(strstr(pf_writer_names(), "pprof"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pprof_fixed),
        cmocka_unit_test(pprof_process_roots),
        cmocka_unit_test(pprof_empty),
        cmocka_unit_test(pprof_large),
        cmocka_unit_test(pprof_bytes),
        cmocka_unit_test(pprof_registered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
