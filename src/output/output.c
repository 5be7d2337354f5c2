/* output: profiles written whole, to stdout or renamed into place (output.h). */
#include "pyflame/output/output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pf_output {
    const char *tmpl; /* NULL: stdout */
    char path[4096];  /* the last expansion */
};

/* Expand %t, %n, %% of tmpl into buf. False if it does not fit or holds
 * another '%' sequence. */
static bool expand(const char *tmpl, int64_t unix_s, unsigned n, char *buf, size_t cap)
{
    size_t len = 0;
    for (const char *p = tmpl; *p; p++) {
        char piece[32];
        const char *add = piece;
        if (*p != '%') {
            piece[0] = *p;
            piece[1] = '\0';
        } else if (p[1] == 't') {
            snprintf(piece, sizeof(piece), "%lld", (long long)unix_s);
            p++;
        } else if (p[1] == 'n') {
            snprintf(piece, sizeof(piece), "%u", n);
            p++;
        } else if (p[1] == '%') {
            add = "%";
            p++;
        } else {
            return false;
        }
        size_t k = strlen(add);
        if (len + k + 1 > cap)
            return false;
        memcpy(buf + len, add, k + 1);
        len += k;
    }
    return true;
}

pf_err pf_output_open(const char *path, struct pf_output **out, struct pf_diag *diag)
{
    struct pf_output *o = calloc(1, sizeof(*o));
    if (!o)
        return PF_ERR_NOMEM;
    o->tmpl = path;
    if (path) {
        char tmp[sizeof(o->path) + 8];
        if (!expand(path, 0, 0, o->path, sizeof(o->path))) {
            free(o);
            return pf_diag_set(diag, PF_ERR_USAGE,
                               "-o %s: a '%%' must be %%t (time), %%n (window) or %%%% (a '%%')", path);
        }
        struct stat st;
        if (lstat(o->path, &st) == 0 && !S_ISREG(st.st_mode)) {
            /* A device, FIFO or symlink is written through (pf_output_write). */
            *out = o;
            return PF_OK;
        }
        snprintf(tmp, sizeof(tmp), "%s.tmp", o->path);
        FILE *f = fopen(tmp, "we");
        if (!f) {
            pf_err e = pf_diag_set(diag, PF_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
            free(o);
            return e;
        }
        fclose(f);
        unlink(tmp);
    }
    *out = o;
    return PF_OK;
}

void pf_output_free(struct pf_output *o)
{
    free(o);
}

bool pf_output_per_window(const struct pf_output *o)
{
    return o->tmpl && (strstr(o->tmpl, "%t") || strstr(o->tmpl, "%n"));
}

const char *pf_output_last_path(const struct pf_output *o)
{
    return o->tmpl ? o->path : "standard output";
}

pf_err pf_output_write(struct pf_output *o, const struct pf_writer *w, const struct pf_agg *agg,
                       const struct pf_intern *names, const struct pf_write_opts *wo, int64_t unix_s,
                       unsigned n, struct pf_diag *diag)
{
    if (!o->tmpl) {
        pf_err err = w->write(stdout, agg, names, wo);
        if (err)
            return pf_diag_set(diag, err, "writing the profile failed: %s",
                               errno == EPIPE ? "output pipe closed" : strerror(errno));
        return PF_OK;
    }
    char tmp[sizeof(o->path) + 8];
    if (!expand(o->tmpl, unix_s, n, o->path, sizeof(o->path)))
        return pf_diag_set(diag, PF_ERR_USAGE, "-o %s: the path is too long", o->tmpl);
    /* Only a regular file (or none yet) is replaced by rename: a device
     * (-o /dev/null, /dev/stdout), a FIFO or a symlink is written through,
     * as it is; renaming over it would replace it (as root, /dev/null). */
    struct stat st;
    if (lstat(o->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        FILE *f = fopen(o->path, "we");
        if (!f)
            return pf_diag_set(diag, PF_ERR_IO, "cannot write %s: %s", o->path, strerror(errno));
        pf_err err = w->write(f, agg, names, wo);
        int saved = errno;
        if (fclose(f) != 0 && !err) {
            err = PF_ERR_IO;
            saved = errno;
        }
        return err ? pf_diag_set(diag, err, "writing %s failed: %s", o->path, strerror(saved)) : PF_OK;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", o->path);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return pf_diag_set(diag, PF_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    pf_err err = w->write(f, agg, names, wo);
    int saved = errno;
    if (fclose(f) != 0 && !err) {
        err = PF_ERR_IO;
        saved = errno;
    }
    if (!err && rename(tmp, o->path) != 0) {
        err = PF_ERR_IO;
        saved = errno;
    }
    if (err) {
        unlink(tmp);
        return pf_diag_set(diag, err, "writing %s failed: %s", o->path, strerror(saved));
    }
    return PF_OK;
}
