/* serve: the pprof HTTP endpoint (serve.h). */
#include "pyflame/output/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyflame/base/clock.h"

/* One scrape waiting for its window's profile. */
struct job {
    uint64_t from, to; /* monotonic ns */
    bool done;
    char *body; /* malloc'd, or NULL when the profile could not be made */
    size_t len;
    struct job *next;
};

struct pf_serve {
    struct MHD_Daemon *daemon;
    int fd;
    char url[96];
    struct pf_write_opts base;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *jobs;   /* scrapes in progress (under lock) */
    atomic_int pending; /* how many: the sampling thread looks only if any */
    bool stopping;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, char *body,
                             size_t len, bool owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 200 && strcmp(type, "application/octet-stream") == 0)
        MHD_add_response_header(r, "Content-Disposition", "attachment; filename=\"profile\"");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static char INDEX[] =
    "<html><head><title>pyflame /debug/pprof/</title></head><body>\n"
    "<p>pyflame: profiles of a CPython process, in pprof's format.</p>\n"
    "<ul><li><a href=\"profile?seconds=30\">profile</a>: CPU profile of the next N seconds "
    "(?seconds=N, 1 to 300; default 30)</li></ul>\n</body></html>\n";
static char OK[] = "ok\n";

/* A scrape: registered at once (the sampling thread keeps the timeline
 * from its window's start), answered by the sampling thread when its
 * window has ended. */
static enum MHD_Result scrape(struct pf_serve *s, struct MHD_Connection *c)
{
    const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "seconds");
    long seconds = 30;
    if (arg) {
        char *end;
        errno = 0;
        seconds = strtol(arg, &end, 10);
        if (errno || end == arg || *end || seconds < 1 || seconds > PF_SERVE_MAX_SECONDS) {
            static char bad[] = "seconds: a whole number from 1 to 300\n";
            return reply(c, MHD_HTTP_BAD_REQUEST, "text/plain", bad, sizeof(bad) - 1, false);
        }
    }
    struct job job = {0};

    /* The window starts under the lock: the sampling thread trims the
     * timeline under it too, so no sample of the window can go first. */
    pthread_mutex_lock(&s->lock);
    job.from = pf_clock_now_ns();
    job.to = job.from + (uint64_t)seconds * 1000000000u;
    job.next = s->jobs;
    s->jobs = &job;
    atomic_fetch_add(&s->pending, 1);
    while (!job.done && !s->stopping)
        pthread_cond_wait(&s->cond, &s->lock);
    for (struct job **p = &s->jobs; *p; p = &(*p)->next)
        if (*p == &job) {
            *p = job.next;
            break;
        }
    atomic_fetch_sub(&s->pending, 1);
    pthread_mutex_unlock(&s->lock);

    if (!job.done) {
        static char gone[] = "pyflame is ending\n";
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", gone, sizeof(gone) - 1, false);
    }
    if (!job.body) {
        static char fail[] = "the profile could not be made\n";
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", fail, sizeof(fail) - 1, false);
    }
    return reply(c, MHD_HTTP_OK, "application/octet-stream", job.body, job.len, true);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
    struct pf_serve *s = cls;
    (void)version;
    (void)upload;
    /* The first call only announces the request (libmicrohttpd's protocol). */
    if (!*state) {
        *state = (void *)1;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* no body is expected: read and ignore it */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static char no[] = "only GET\n";
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", no, sizeof(no) - 1, false);
    }
    if (strcmp(url, "/debug/pprof/profile") == 0)
        return scrape(s, c);
    if (strcmp(url, "/debug/pprof/") == 0 || strcmp(url, "/debug/pprof") == 0)
        return reply(c, MHD_HTTP_OK, "text/html", INDEX, sizeof(INDEX) - 1, false);
    if (strcmp(url, "/healthz") == 0)
        return reply(c, MHD_HTTP_OK, "text/plain", OK, sizeof(OK) - 1, false);
    static char none[] = "not found: try /debug/pprof/\n";
    return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", none, sizeof(none) - 1, false);
}

static bool parse_addr(const char *addr, struct sockaddr_in *sa)
{
    char host[64] = "127.0.0.1";
    const char *colon = strrchr(addr, ':');
    const char *port = colon ? colon + 1 : addr;
    if (colon && colon > addr) {
        size_t n = (size_t)(colon - addr);
        if (n >= sizeof(host))
            return false;
        memcpy(host, addr, n);
        host[n] = '\0';
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return false;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)p);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

pf_err pf_serve_check_addr(const char *addr, struct pf_diag *diag)
{
    struct sockaddr_in sa;
    if (!parse_addr(addr, &sa))
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--serve: '%s' is not PORT, :PORT or IPV4:PORT (e.g. 127.0.0.1:6060)", addr);
    return PF_OK;
}

pf_err pf_serve_start(const char *addr, const struct pf_write_opts *base, struct pf_serve **out,
                      struct pf_diag *diag)
{
    struct sockaddr_in sa;
    if (!parse_addr(addr, &sa))
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--serve: '%s' is not PORT, :PORT or IPV4:PORT (e.g. 127.0.0.1:6060)", addr);
    struct pf_serve *s = calloc(1, sizeof(*s));
    if (!s)
        return PF_ERR_NOMEM;
    s->base = *base;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    /* Our own socket: the port is known (port 0 picks one) before the
     * daemon starts. */
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t len = sizeof(sa);
    if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s->fd, 64) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&sa, &len) != 0) {
        pf_err e = pf_diag_set(diag, PF_ERR_IO, "--serve %s: cannot listen: %s", addr, strerror(errno));
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        return e;
    }
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
    snprintf(s->url, sizeof(s->url), "http://%s:%u", ip, (unsigned)ntohs(sa.sin_port));
    /* A thread per connection: a scrape waits its seconds in its own. */
    s->daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                     MHD_USE_ERROR_LOG,
                                 0, NULL, NULL, handle, s, MHD_OPTION_LISTEN_SOCKET, s->fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)(PF_SERVE_MAX_SECONDS + 60), MHD_OPTION_END);
    if (!s->daemon) {
        close(s->fd);
        free(s);
        return pf_diag_set(diag, PF_ERR_IO, "--serve %s: the HTTP server did not start", addr);
    }
    *out = s;
    return PF_OK;
}

const char *pf_serve_url(const struct pf_serve *s)
{
    return s->url;
}

/* The profile of [from, to) from agg's timeline, as pprof bytes. */
static void build(struct pf_serve *s, struct job *j, const struct pf_agg *agg, const struct pf_intern *names,
                  double interval)
{
    struct pf_agg *w;
    /* A timeline that could not grow has a hole: no profile (500) rather
     * than one that says N seconds and holds fewer. */
    if (!pf_agg_timeline_complete(agg))
        return;
    if (pf_agg_new(&w) != PF_OK)
        return;
    size_t n = pf_agg_timeline_count(agg);
    pf_err err = PF_OK;
    for (size_t i = 0; i < n && !err; i++) {
        uint64_t t;
        uint32_t what;
        pf_agg_timeline_at(agg, i, &t, &what);
        if (t < j->from || t >= j->to)
            continue;
        if (what == PF_AGG_IDLE) {
            pf_agg_add_idle(w, 1);
        } else if (PF_AGG_IS_FAILED(what)) {
            pf_agg_add_failed(w, PF_AGG_FAILED_REASON(what), 1);
        } else {
            const uint32_t *frames;
            size_t depth;
            uint64_t count;
            pf_agg_stack_at(agg, what, &frames, &depth, &count);
            err = pf_agg_add(w, frames, depth, 1);
        }
    }
    struct pf_write_opts wo = s->base;
    wo.interval = interval;
    wo.duration = (double)(j->to - j->from) / 1e9;
    wo.start_unix_ns = (int64_t)j->from + s->base.mono_to_unix_ns;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!err && f && pf_writer_pprof.write(f, w, names, &wo) == PF_OK && fclose(f) == 0) {
        j->body = buf;
        j->len = len;
    } else {
        if (f)
            fclose(f);
        free(buf);
    }
    pf_agg_free(w);
}

bool pf_serve_due(struct pf_serve *s)
{
    if (atomic_load(&s->pending) == 0)
        return false;
    uint64_t now = pf_clock_now_ns();
    bool due = false;
    pthread_mutex_lock(&s->lock);
    for (struct job *j = s->jobs; j && !due; j = j->next)
        due = !j->done && j->to <= now;
    pthread_mutex_unlock(&s->lock);
    return due;
}

void pf_serve_poll(struct pf_serve *s, struct pf_agg *agg, const struct pf_intern *names, double interval)
{
    pthread_mutex_lock(&s->lock);
    uint64_t now = pf_clock_now_ns(), keep = now;
    bool answered = false;
    for (struct job *j = s->jobs; j; j = j->next) {
        if (j->done)
            continue;
        if (j->to <= now) {
            build(s, j, agg, names, interval);
            j->done = answered = true;
        } else if (j->from < keep) {
            keep = j->from;
        }
    }
    if (answered)
        pthread_cond_broadcast(&s->cond);
    /* The timeline is kept only as far back as a scrape in progress needs. */
    pf_agg_timeline_drop_before(agg, keep);
    pthread_mutex_unlock(&s->lock);
}

void pf_serve_stop(struct pf_serve *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    MHD_stop_daemon(s->daemon); /* closes the listening socket too */
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
