/* top: the live view (top.h), drawn with ncurses. */
#include "pyflame/app/top.h"

#include <curses.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyflame/output/topview.h"
#include "pyflame/output/writer.h"

#define MAX_PATH 64
#define MIN_COLS 60
#define MIN_LINES 8

struct pf_top {
    const struct pf_agg *agg;
    const struct pf_intern *names;
    const char *title;
    double asked, delay;
    bool threads;
    /* The view. */
    pf_top_fn path[MAX_PATH];
    uint32_t path_frame[MAX_PATH];
    size_t npath;
    size_t selected[MAX_PATH + 1], top_row[MAX_PATH + 1]; /* per level */
    bool by_own, cumulated, paused, thread_view;
    /* The last interval: each stack's count at the last refresh, and the
     * difference since. */
    uint64_t *prev, *delta;
    size_t nprev;
    double next_refresh, next_keys;
    bool dirty; /* a key changed the view: redraw now */
    struct pf_top_row *rows; /* as last drawn */
    size_t nrows;
    struct pf_sampler_progress last;
};

pf_err pf_top_start(const struct pf_agg *agg, const struct pf_intern *names, const char *title,
                    double asked_interval, double delay, bool threads, struct pf_top **out,
                    struct pf_diag *diag)
{
    if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))
        return pf_diag_set(diag, PF_ERR_USAGE,
                           "--top draws on a terminal: stdin and stdout must be one "
                           "(to record to a file or a pipe, leave --top out)");
    const char *term = getenv("TERM");
    if (!term || !*term || strcmp(term, "dumb") == 0)
        return pf_diag_set(diag, PF_ERR_USAGE, "--top needs a terminal type: TERM is %s",
                           term && *term ? term : "not set");
    struct pf_top *t = calloc(1, sizeof(*t));
    if (!t)
        return PF_ERR_NOMEM;
    *t = (struct pf_top){.agg = agg, .names = names, .title = title, .asked = asked_interval,
                         .delay = delay, .threads = threads, .cumulated = false, .dirty = true};
    if (!newterm(NULL, stdout, stdin)) {
        free(t);
        return pf_diag_set(diag, PF_ERR_USAGE, "--top: cannot use the terminal (TERM=%s)", term);
    }
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
    *out = t;
    return PF_OK;
}

void pf_top_end(struct pf_top *t)
{
    if (!t)
        return;
    endwin();
    free(t->prev);
    free(t->delta);
    free(t->rows);
    free(t);
}

/* Take the last interval's counts: each stack's count minus the last. */
static void take_interval(struct pf_top *t)
{
    size_t n = pf_agg_stack_count(t->agg);
    if (n > t->nprev) {
        uint64_t *p = realloc(t->prev, n * sizeof(*p)), *d;
        if (!p)
            return;
        t->prev = p;
        d = realloc(t->delta, n * sizeof(*d));
        if (!d)
            return;
        t->delta = d;
        memset(t->prev + t->nprev, 0, (n - t->nprev) * sizeof(*p));
        t->nprev = n;
    }
    for (size_t i = 0; i < n; i++) {
        const uint32_t *f;
        size_t depth;
        uint64_t c;
        pf_agg_stack_at(t->agg, i, &f, &depth, &c);
        t->delta[i] = c - t->prev[i];
        t->prev[i] = c;
    }
}

static void fn_text(const struct pf_top *t, const struct pf_top_row *r, char *buf, size_t cap)
{
    if (r->fn == PF_TOP_SELF) {
        snprintf(buf, cap, "(self)");
        return;
    }
    const char *function, *file;
    int line;
    pf_writer_frame_parts(t->names, r->frame, &function, &file, &line);
    if (*file)
        snprintf(buf, cap, "%s (%s)", function, file);
    else
        snprintf(buf, cap, "%s", function);
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
}

static size_t count_threads(const struct pf_top *t)
{
    size_t n = 0;
    pf_top_fn seen[256];
    for (size_t i = 0; i < pf_agg_stack_count(t->agg); i++) {
        const uint32_t *f;
        size_t depth;
        uint64_t c;
        const char *label;
        enum pf_writer_root kind;
        pf_agg_stack_at(t->agg, i, &f, &depth, &c);
        if (!pf_writer_root_of(t->names, f, depth, &kind, &label) || kind != PF_ROOT_THREAD)
            continue;
        pf_top_fn fn = pf_top_fn_of(t->names, f[0]);
        size_t k = 0;
        while (k < n && seen[k] != fn)
            k++;
        if (k == n && n < 256)
            seen[n++] = fn;
    }
    return n;
}

static void draw(struct pf_top *t, struct pf_top_row *rows, size_t nrows, uint64_t context)
{
    const struct pf_sampler_progress *p = &t->last;
    erase();
    if (COLS < MIN_COLS || LINES < MIN_LINES) {
        mvprintw(0, 0, "pyflame --top: the terminal is too small");
        mvprintw(1, 0, "(%dx%d; needs %dx%d)", COLS, LINES, MIN_COLS, MIN_LINES);
        refresh();
        return;
    }
    uint64_t stacks = pf_agg_stack_samples(t->agg), idle = pf_agg_idle(t->agg), failed = pf_agg_failed(t->agg);
    uint64_t all = stacks + idle + failed;
    double pct = all ? 100.0 / (double)all : 0;
    attron(A_BOLD);
    mvprintw(0, 0, "pyflame --top  %.*s", COLS - 16, t->title);
    attroff(A_BOLD);
    mvprintw(1, 0, "Python %u.%u.%u  %.0f samples/s (asked %.0f)  %llu samples  idle %.1f%%  failed %.1f%%",
             p->py_major, p->py_minor, p->py_micro, p->elapsed > 0 ? (double)p->ticks / p->elapsed : 0,
             1.0 / t->asked, (unsigned long long)all, (double)idle * pct, (double)failed * pct);
    if (t->threads)
        printw("  threads %zu", count_threads(t));
    mvprintw(2, 0, "%s, by %s%s%s", t->cumulated ? "cumulated" : "last interval", t->by_own ? "own" : "total",
             t->paused ? "  [paused]" : "", t->thread_view ? "  [threads]" : "");
    /* The path walked so far. */
    move(3, 0);
    printw("%s", t->npath ? "" : (t->thread_view ? "threads" : "all functions"));
    for (size_t i = 0; i < t->npath; i++) {
        struct pf_top_row r = {.fn = t->path[i], .frame = t->path_frame[i]};
        char buf[512];
        fn_text(t, &r, buf, sizeof(buf));
        char *paren = strstr(buf, " (");
        if (paren)
            *paren = '\0';
        printw("%s%s", i ? " > " : "", buf);
    }
    attron(A_REVERSE);
    mvprintw(4, 0, "%7s %7s %8s %8s  %-*s", "%own", "%total", "own_s", "total_s", COLS - 36,
             "function (file)");
    attroff(A_REVERSE);
    size_t level = t->npath, visible = (size_t)(LINES - 6);
    if (nrows && t->selected[level] >= nrows)
        t->selected[level] = nrows - 1;
    if (t->selected[level] < t->top_row[level])
        t->top_row[level] = t->selected[level];
    if (t->selected[level] >= t->top_row[level] + visible)
        t->top_row[level] = t->selected[level] - visible + 1;
    /* Shares of every sample of the window shown, as the header counts. */
    uint64_t window = 0;
    if (t->cumulated)
        window = all;
    else
        for (size_t i = 0; i < t->nprev; i++)
            window += t->delta[i];
    double wpct = window ? 100.0 / (double)window : 0;
    double span = p->interval;
    for (size_t i = t->top_row[level]; i < nrows && i < t->top_row[level] + visible; i++) {
        char buf[1024];
        fn_text(t, &rows[i], buf, sizeof(buf));
        if (i == t->selected[level])
            attron(A_REVERSE);
        mvprintw(5 + (int)(i - t->top_row[level]), 0, "%6.2f%% %6.2f%% %8.2f %8.2f  %.*s",
                 (double)rows[i].own * wpct, (double)rows[i].total * wpct, (double)rows[i].own * span,
                 (double)rows[i].total * span, COLS - 36, buf);
        if (i == t->selected[level])
            attroff(A_REVERSE);
    }
    (void)context;
    mvprintw(LINES - 1, 0, "%.*s", COLS - 1,
             "Enter callees  Backspace back  s sort  c interval/cumulated  p pause  t threads  q quit");
    refresh();
}

static void redraw(struct pf_top *t)
{
    struct pf_top_query q = {
        .path = t->path,
        .npath = t->npath,
        .anchored = t->thread_view,
        .skip_threads = !t->thread_view,
        .sort = t->by_own ? PF_TOP_BY_OWN : PF_TOP_BY_TOTAL,
    };
    struct pf_top_row *rows = NULL;
    size_t n = 0;
    uint64_t context = 0;
    if (pf_top_rows(t->agg, t->names, t->cumulated ? NULL : t->delta, t->nprev, &q, &rows, &n,
                    &context) != PF_OK)
        return;
    draw(t, rows, n, context);
    /* Enter opens the row as drawn. */
    free(t->rows);
    t->rows = rows;
    t->nrows = n;
    t->dirty = false;
}

static void key(struct pf_top *t, int c, bool *quit)
{
    size_t *sel = &t->selected[t->npath];
    switch (c) {
    case 'q':
    case 'Q':
        *quit = true;
        break;
    case KEY_UP:
        if (*sel)
            (*sel)--;
        break;
    case KEY_DOWN:
        if (*sel + 1 < t->nrows)
            (*sel)++;
        break;
    case KEY_PPAGE:
        *sel = *sel > (size_t)(LINES - 6) ? *sel - (size_t)(LINES - 6) : 0;
        break;
    case KEY_NPAGE:
        *sel += (size_t)(LINES - 6);
        break;
    case '\n':
    case '\r':
    case KEY_ENTER:
        if (*sel < t->nrows && t->rows[*sel].fn != PF_TOP_SELF && t->npath < MAX_PATH) {
            t->path[t->npath] = t->rows[*sel].fn;
            t->path_frame[t->npath] = t->rows[*sel].frame;
            t->npath++;
            t->selected[t->npath] = t->top_row[t->npath] = 0;
        }
        break;
    case KEY_BACKSPACE:
    case 127:
    case 8:
    case KEY_LEFT:
        if (t->npath)
            t->npath--;
        break;
    case 's':
        t->by_own = !t->by_own;
        break;
    case 'c':
        t->cumulated = !t->cumulated;
        break;
    case 'p':
        t->paused = !t->paused;
        break;
    case 't':
        if (t->threads) {
            t->thread_view = !t->thread_view;
            t->npath = 0;
            t->selected[0] = t->top_row[0] = 0;
        }
        break;
    case KEY_RESIZE:
        break;
    default:
        return;
    }
    t->dirty = true;
}

/* A terminal that takes no output now (Ctrl-S, a stalled ssh) must not
 * block the sampling thread: the redraw waits for the next chance. */
static bool can_draw(void)
{
    struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

bool pf_top_update(struct pf_top *t, const struct pf_sampler_progress *p)
{
    bool quit = false;
    int c;
    /* Keys 50 times a second, not at every tick: each look is a read(2),
     * and at 1 kHz that was a fifth of pyflame's CPU. */
    if (p->elapsed >= t->next_keys) {
        t->next_keys = p->elapsed + 0.02;
        while ((c = getch()) != ERR && !quit)
            key(t, c, &quit);
    }
    if (quit)
        return true;
    bool due = p->elapsed >= t->next_refresh;
    if (due && !t->paused) {
        /* The data moves on only at the refresh, and not while paused. */
        t->last = *p;
        take_interval(t);
        t->next_refresh = p->elapsed + t->delay;
        t->dirty = true;
    }
    if (t->dirty && can_draw())
        redraw(t);
    return false;
}
