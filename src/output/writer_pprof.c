/* pprof's format: a gzip-compressed perftools.profiles.Profile message
 * (profile.proto of github.com/google/pprof), which `go tool pprof`,
 * Pyroscope, Grafana and most profile viewers read.
 *
 * - Two values per sample: samples/count and cpu/nanoseconds (count times
 *   the interval); the period is the interval, cpu/nanoseconds.
 * - Each distinct stack of the aggregate is one Sample, its locations leaf
 *   first (the aggregate's stacks are root first).
 * - One Location per frame id (a function and a line), one Function per
 *   distinct (name, file). start_line is 0: a sample says which line was
 *   running, not where its function begins.
 * - A root "(thread TID NAME)" of --show-threads is not a location but the
 *   sample's labels: thread = the label, tid = TID. Pprof can then filter
 *   by thread (-tagfocus) without it standing in every call tree. So is a
 *   root "(process PID COMMAND)" of --subprocesses: process and pid.
 * - Other pseudo and native frames are functions named by their label,
 *   with no file.
 * - Idle samples (unless -x) are one sample at a location "(idle)"; failed
 *   ones one sample per reason at "(failed)", with a label reason.
 *
 * Functions have no system_name. Pprof takes a name equal to its
 * system_name for one it may demangle, and its heuristic for demangled C++
 * strips what is in angle brackets: "<module>", "<lambda>", "<genexpr>"
 * would all show as "<unknown>". An empty system_name tells it the name is
 * final.
 *
 * One Mapping holds every location. Python code has no addresses, but
 * without a mapping pprof makes a fake one without symbols, tries to
 * symbolize it and warns "Main binary filename not available". Ours says
 * its functions, files and lines are already there. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pyflame/output/protobuf.h"
#include "pyflame/output/writer.h"
#include "pyflame_config.h"

/* profile.proto field numbers. */
enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9,
    PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,
    PROFILE_COMMENT = 13,
    VALUE_TYPE_TYPE = 1,
    VALUE_TYPE_UNIT = 2,
    SAMPLE_LOCATION_ID = 1,
    SAMPLE_VALUE = 2,
    SAMPLE_LABEL = 3,
    LABEL_KEY = 1,
    LABEL_STR = 2,
    LABEL_NUM = 3,
    MAPPING_ID = 1,
    MAPPING_HAS_FUNCTIONS = 7,
    MAPPING_HAS_FILENAMES = 8,
    MAPPING_HAS_LINE_NUMBERS = 9,
    LOCATION_ID = 1,
    LOCATION_MAPPING_ID = 2,
    LOCATION_LINE = 4,
    LINE_FUNCTION_ID = 1,
    LINE_LINE = 2,
    FUNCTION_ID = 1,
    FUNCTION_NAME = 2,
    FUNCTION_FILENAME = 4,
};

struct location {
    uint64_t function; /* function id */
    int64_t line;
};

struct pprof {
    struct pf_pb pb;
    /* The profile's own tables, in a pf_intern of their own: its dense ids
     * are the string table's indices, and a function is the frame
     * (file, name) whose id + 1 is the function id. */
    struct pf_intern *tab;
    pf_err err; /* the first failure of str() or func() */
    const struct pf_intern *names;
    uint64_t *loc_of_frame; /* names' frame id -> location id; 0: none yet */
    struct location *locs;  /* location id - 1 -> its function and line */
    size_t nlocs;
    uint64_t *ids; /* one sample's location ids */
};

static uint64_t str(struct pprof *p, const char *s)
{
    uint32_t id = 0;
    pf_err err = pf_intern_str(p->tab, s, strlen(s), &id);
    if (err && !p->err)
        p->err = err;
    return id;
}

static uint64_t func(struct pprof *p, const char *name, const char *file)
{
    /* Name, then file, in statements of their own: the order of the
     * string table is part of the output (and of its test), and the
     * expressions of an initializer list are not sequenced. */
    uint64_t name_id = str(p, name);
    uint64_t file_id = str(p, file);
    struct pf_frame_text f = {
        .kind = PF_FRAME_PYTHON, .name = (uint32_t)name_id, .file = (uint32_t)file_id};
    uint32_t id = 0;
    pf_err err = pf_intern_frame(p->tab, &f, &id);
    if (err && !p->err)
        p->err = err;
    return (uint64_t)id + 1;
}

static uint64_t new_location(struct pprof *p, const char *name, const char *file, int line)
{
    p->locs[p->nlocs] = (struct location){func(p, name, file), line};
    return ++p->nlocs;
}

/* The location of frame id f, made on first use. */
static uint64_t location_of(struct pprof *p, uint32_t f)
{
    if (!p->loc_of_frame[f]) {
        const char *name, *file;
        int line;
        pf_writer_frame_parts(p->names, f, &name, &file, &line);
        p->loc_of_frame[f] = new_location(p, name, file, line);
    }
    return p->loc_of_frame[f];
}

static void value_type(struct pprof *p, uint32_t field, const char *type, const char *unit)
{
    size_t m = pf_pb_begin(&p->pb, field);
    pf_pb_int64_nz(&p->pb, VALUE_TYPE_TYPE, (int64_t)str(p, type));
    pf_pb_int64_nz(&p->pb, VALUE_TYPE_UNIT, (int64_t)str(p, unit));
    pf_pb_end(&p->pb, m);
}

static void str_label(struct pprof *p, const char *key, const char *value)
{
    size_t m = pf_pb_begin(&p->pb, SAMPLE_LABEL);
    pf_pb_int64_nz(&p->pb, LABEL_KEY, (int64_t)str(p, key));
    pf_pb_int64_nz(&p->pb, LABEL_STR, (int64_t)str(p, value));
    pf_pb_end(&p->pb, m);
}

static void num_label(struct pprof *p, const char *key, int64_t value)
{
    size_t m = pf_pb_begin(&p->pb, SAMPLE_LABEL);
    pf_pb_int64_nz(&p->pb, LABEL_KEY, (int64_t)str(p, key));
    pf_pb_int64_nz(&p->pb, LABEL_NUM, value);
    pf_pb_end(&p->pb, m);
}

/* Start a Sample of the n location ids in p->ids (leaf first), count
 * samples; its labels may follow, then pf_pb_end with the mark returned. */
static size_t begin_sample(struct pprof *p, size_t n, uint64_t count, int64_t interval_ns)
{
    size_t m = pf_pb_begin(&p->pb, PROFILE_SAMPLE);
    pf_pb_packed(&p->pb, SAMPLE_LOCATION_ID, p->ids, n);
    uint64_t values[2] = {count, count * (uint64_t)interval_ns};
    pf_pb_packed(&p->pb, SAMPLE_VALUE, values, 2);
    return m;
}

/* gzip (RFC 1952, zlib's deflate with a gzip wrapper) of the message, to out. */
static pf_err gzip_to(FILE *out, const uint8_t *data, size_t len)
{
    z_stream zs = {0};
    /* 15 + 16: the largest window, and a gzip header and trailer instead
     * of zlib's. The header's time stays 0, so the same profile gives the
     * same bytes. */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return PF_ERR_NOMEM;
    unsigned char buf[16384];
    pf_err err = PF_OK;
    int flush = Z_NO_FLUSH;
    do {
        if (zs.avail_in == 0 && flush == Z_NO_FLUSH) {
            /* avail_in is an unsigned int: feed a huge message in parts. */
            size_t part = len > 1u << 30 ? 1u << 30 : len;
            zs.next_in = (Bytef *)data;
            zs.avail_in = (uInt)part;
            data += part;
            len -= part;
            if (len == 0)
                flush = Z_FINISH;
        }
        zs.next_out = buf;
        zs.avail_out = sizeof(buf);
        int rc = deflate(&zs, flush);
        if (rc == Z_STREAM_ERROR) {
            err = PF_ERR_INTERNAL;
            break;
        }
        size_t have = sizeof(buf) - zs.avail_out;
        if (have && fwrite(buf, 1, have, out) != have) {
            err = PF_ERR_IO;
            break;
        }
        if (rc == Z_STREAM_END)
            break;
    } while (1);
    deflateEnd(&zs);
    return err;
}

static pf_err write_pprof(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                          const struct pf_write_opts *opts)
{
    size_t nframes = pf_intern_frame_count(names), nstacks = pf_agg_stack_count(agg);
    size_t maxdepth = 1;
    for (size_t i = 0; i < nstacks; i++) {
        const uint32_t *ids;
        size_t depth;
        uint64_t count;
        pf_agg_stack_at(agg, i, &ids, &depth, &count);
        if (depth > maxdepth)
            maxdepth = depth;
    }
    struct pprof p = {
        .names = names,
        .loc_of_frame = calloc(nframes + 1, sizeof(uint64_t)),
        /* Every frame, and (idle) and (failed). */
        .locs = calloc(nframes + 2, sizeof(struct location)),
        .ids = calloc(maxdepth, sizeof(uint64_t)),
    };
    pf_pb_init(&p.pb);
    pf_err err = PF_ERR_NOMEM;
    if (!p.loc_of_frame || !p.locs || !p.ids || pf_intern_new(&p.tab) != PF_OK)
        goto out;
    str(&p, ""); /* string_table[0] must be "" */

    int64_t interval_ns = (int64_t)(opts->interval * 1e9 + 0.5);
    value_type(&p, PROFILE_SAMPLE_TYPE, "samples", "count");
    value_type(&p, PROFILE_SAMPLE_TYPE, "cpu", "nanoseconds");

    for (size_t i = 0; i < nstacks; i++) {
        const uint32_t *ids;
        size_t depth;
        uint64_t count;
        const char *label[2];
        enum pf_writer_root kind[2];
        int id[2];
        size_t root = 0, n = 0;
        pf_agg_stack_at(agg, i, &ids, &depth, &count);
        /* (process ...) then (thread ...), each optional: labels, not
         * locations. */
        while (root < 2 && (id[root] = pf_writer_root_of(names, ids + root, depth - root,
                                                         &kind[root], &label[root])))
            root++;
        for (size_t d = depth; d > root; d--)
            p.ids[n++] = location_of(&p, ids[d - 1]);
        size_t m = begin_sample(&p, n, count, interval_ns);
        for (size_t r = 0; r < root; r++) {
            bool thread = kind[r] == PF_ROOT_THREAD;
            str_label(&p, thread ? "thread" : "process", label[r]);
            num_label(&p, thread ? "tid" : "pid", id[r]);
        }
        pf_pb_end(&p.pb, m);
    }
    uint64_t idle = opts->include_idle ? pf_agg_idle(agg) : 0;
    if (idle) {
        p.ids[0] = new_location(&p, "(idle)", "", 0);
        pf_pb_end(&p.pb, begin_sample(&p, 1, idle, interval_ns));
    }
    if (pf_agg_failed(agg)) {
        p.ids[0] = new_location(&p, "(failed)", "", 0);
        for (int r = 0; r < PF_FAIL__COUNT; r++) {
            uint64_t count = pf_agg_failed_by(agg, (enum pf_fail_reason)r);
            if (!count)
                continue;
            size_t m = begin_sample(&p, 1, count, interval_ns);
            str_label(&p, "reason", pf_fail_reason_name((enum pf_fail_reason)r));
            pf_pb_end(&p.pb, m);
        }
    }

    size_t mm = pf_pb_begin(&p.pb, PROFILE_MAPPING);
    pf_pb_uint64(&p.pb, MAPPING_ID, 1);
    pf_pb_uint64(&p.pb, MAPPING_HAS_FUNCTIONS, 1);
    pf_pb_uint64(&p.pb, MAPPING_HAS_FILENAMES, 1);
    pf_pb_uint64(&p.pb, MAPPING_HAS_LINE_NUMBERS, 1);
    pf_pb_end(&p.pb, mm);
    for (size_t l = 0; l < p.nlocs; l++) {
        size_t m = pf_pb_begin(&p.pb, PROFILE_LOCATION);
        pf_pb_uint64(&p.pb, LOCATION_ID, l + 1);
        pf_pb_uint64(&p.pb, LOCATION_MAPPING_ID, 1);
        size_t ml = pf_pb_begin(&p.pb, LOCATION_LINE);
        pf_pb_uint64(&p.pb, LINE_FUNCTION_ID, p.locs[l].function);
        pf_pb_int64_nz(&p.pb, LINE_LINE, p.locs[l].line);
        pf_pb_end(&p.pb, ml);
        pf_pb_end(&p.pb, m);
    }

    value_type(&p, PROFILE_PERIOD_TYPE, "cpu", "nanoseconds");
    pf_pb_int64_nz(&p.pb, PROFILE_PERIOD, interval_ns);
    pf_pb_int64_nz(&p.pb, PROFILE_TIME_NANOS, opts->start_unix_ns);
    pf_pb_int64_nz(&p.pb, PROFILE_DURATION_NANOS, (int64_t)(opts->duration * 1e9 + 0.5));
    if (opts->title)
        pf_pb_int64_nz(&p.pb, PROFILE_COMMENT, (int64_t)str(&p, opts->title));

    /* Functions and strings last: everything above may add to them. */
    for (size_t f = 0; f < pf_intern_frame_count(p.tab); f++) {
        const struct pf_frame_text *ft = pf_intern_frame_get(p.tab, (uint32_t)f);
        size_t m = pf_pb_begin(&p.pb, PROFILE_FUNCTION);
        pf_pb_uint64(&p.pb, FUNCTION_ID, f + 1);
        pf_pb_int64_nz(&p.pb, FUNCTION_NAME, ft->name);
        pf_pb_int64_nz(&p.pb, FUNCTION_FILENAME, ft->file);
        pf_pb_end(&p.pb, m);
    }
    for (size_t s = 0; s < pf_intern_str_count(p.tab); s++)
        pf_pb_string(&p.pb, PROFILE_STRING_TABLE, pf_intern_text(p.tab, (uint32_t)s));

    if ((err = p.err) || (err = pf_pb_error(&p.pb)))
        goto out;
    if ((err = gzip_to(out, p.pb.data, p.pb.len)))
        goto out;
    err = fflush(out) != 0 || ferror(out) ? PF_ERR_IO : PF_OK;
out:
    pf_pb_free(&p.pb);
    pf_intern_free(p.tab);
    free(p.loc_of_frame);
    free(p.locs);
    free(p.ids);
    return err;
}

const struct pf_writer pf_writer_pprof = {
    .name = "pprof",
    .write = write_pprof,
};
