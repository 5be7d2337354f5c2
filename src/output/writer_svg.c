/* An interactive flame graph in one self-contained SVG file (-f svg, or -o
 * PATH.svg). The aggregate's stacks are merged, root first, into a prefix
 * tree whose children are sorted by name, as flamegraph.pl does, so the
 * same profile always draws the same picture. Every box's place is
 * computed here; the inline script only reacts to the reader: hover
 * (details line), click (zoom), a search box (Ctrl-F) that highlights
 * matches and sums the share of samples they cover. Nothing is fetched
 * when the file is opened: no fonts, scripts or style sheets from
 * elsewhere.
 *
 * Layout: the root at the bottom ("all", every sample), callees above
 * their callers, as flamegraph.pl draws it. "(idle)" and "(failed)" are
 * boxes of their own on the root level, beside the stacks' roots (idle
 * left out with -x). A box narrower than 1/MIN_SHARE of all samples is not
 * drawn, nor anything above it: a 10,000-frame profile would otherwise be
 * tens of thousands of sub-pixel boxes, slow to open and no more readable.
 * The graph says how many were left out, and lists them (name, place,
 * width) in its data so that a search still counts them.
 *
 * Colours: a Python frame's hue is a hash of its file name, so one file
 * (one module) has the same colour in every profile, and its lightness a
 * hash of the function's name; native frames are hashed on their library
 * and drawn greyer; pseudo frames are grey. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyflame/base/escape.h"
#include "pyflame/cpython/linetable.h"
#include "pyflame/output/writer.h"
#include "pyflame_config.h"

/* Geometry, in SVG user units (CSS pixels when shown at 100%). */
#define IMAGE_W 1200
#define XPAD 10
#define GRAPH_W (IMAGE_W - 2 * XPAD)
#define FRAME_H 16
#define TOP 66 /* the first row of boxes: below title, subtitle and note */
#define FONT "DejaVu Sans Mono, Menlo, Consolas, monospace"
/* The advance of one character at 12 px in a monospace font (0.6 em), a
 * little rounded up, so that a label cut to fit never overflows its box.
 * The script uses the same figure when a zoom changes the widths. */
#define CHAR_W 7.3
#define TITLE_CHARS 70 /* between the reset button and the search box */
/* Boxes under 1/MIN_SHARE of all samples (0.1%: 1.2 px) are not drawn. */
#define MIN_SHARE 1000

#define NONE UINT32_MAX

struct node {
    uint32_t frame;         /* a frame id, or FR_ALL/FR_IDLE/FR_FAILED past them */
    uint32_t parent;        /* NONE for "all" */
    uint32_t child, next;   /* first child, next sibling; NONE */
    uint32_t depth;         /* 0 for "all" */
    uint64_t total, offset; /* samples in it, and before it on its row */
};

struct tree {
    struct node *nodes;
    size_t n, cap;
    uint32_t *slots; /* (parent, frame) -> node + 1, open addressing */
    size_t nslots;
    uint32_t nframes; /* interned frames; the pseudo ids follow */
    char **text;      /* per frame id (and pseudo id): its name, made on first use */
};

#define FR_ALL(t) ((t)->nframes)
#define FR_IDLE(t) ((t)->nframes + 1)
#define FR_FAILED(t) ((t)->nframes + 2)

static size_t slot_of(const struct tree *t, uint32_t parent, uint32_t frame)
{
    uint64_t h = (((uint64_t)parent << 32) | frame) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (t->nslots - 1);
}

static pf_err grow_slots(struct tree *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 1024;
    uint32_t *slots = calloc(n, sizeof(*slots));
    if (!slots)
        return PF_ERR_NOMEM;
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    for (size_t c = 1; c < t->n; c++) {
        size_t s = slot_of(t, t->nodes[c].parent, t->nodes[c].frame);
        while (t->slots[s])
            s = (s + 1) & (t->nslots - 1);
        t->slots[s] = (uint32_t)c + 1;
    }
    return PF_OK;
}

static pf_err new_node(struct tree *t, uint32_t frame, uint32_t parent, uint32_t *out)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        if (cap >= NONE)
            return PF_ERR_NOMEM;
        struct node *nodes = realloc(t->nodes, cap * sizeof(*nodes));
        if (!nodes)
            return PF_ERR_NOMEM;
        t->nodes = nodes;
        t->cap = cap;
    }
    t->nodes[t->n] = (struct node){
        .frame = frame,
        .parent = parent,
        .child = NONE,
        .next = NONE,
        .depth = parent == NONE ? 0 : t->nodes[parent].depth + 1,
    };
    *out = (uint32_t)t->n++;
    return PF_OK;
}

/* The child of parent for frame, made when it is new. */
static pf_err child_of(struct tree *t, uint32_t parent, uint32_t frame, uint32_t *out)
{
    pf_err err;
    if ((t->n + 1) * 2 > t->nslots && (err = grow_slots(t)))
        return err;
    size_t s = slot_of(t, parent, frame);
    for (; t->slots[s]; s = (s + 1) & (t->nslots - 1)) {
        uint32_t c = t->slots[s] - 1;
        if (t->nodes[c].frame == frame && t->nodes[c].parent == parent) {
            *out = c;
            return PF_OK;
        }
    }
    uint32_t c;
    if ((err = new_node(t, frame, parent, &c)))
        return err;
    t->nodes[c].next = t->nodes[parent].child;
    t->nodes[parent].child = c;
    t->slots[s] = c + 1;
    *out = c;
    return PF_OK;
}

/* A frame's name as the graph shows it: "function (file:line)", the label
 * of a native or pseudo frame. Bytes as interned (escaped when written). */
static char *make_name(const struct pf_intern *names, uint32_t frame)
{
    const struct pf_frame_text *f = pf_intern_frame_get(names, frame);
    char *s = NULL;
    int n;

    if (!f)
        return strdup("(unknown)");
    const char *function = pf_intern_text(names, f->name);
    if (f->kind != PF_FRAME_PYTHON)
        return strdup(function);
    const char *file = pf_intern_text(names, f->file);
    if (f->line == PF_LINE_OMITTED)
        n = asprintf(&s, "%s (%s)", function, file);
    else if (f->line == PF_LINE_NONE)
        /* As in collapsed output: the instruction has no line. */
        n = asprintf(&s, "%s (%s:?)", function, file);
    else
        n = asprintf(&s, "%s (%s:%d)", function, file, (int)f->line);
    return n < 0 ? NULL : s;
}

static const char *name_of(struct tree *t, const struct pf_intern *names, uint32_t frame)
{
    if (!t->text[frame]) {
        if (frame == FR_ALL(t))
            t->text[frame] = strdup("all");
        else if (frame == FR_IDLE(t))
            t->text[frame] = strdup("(idle)");
        else if (frame == FR_FAILED(t))
            t->text[frame] = strdup("(failed)");
        else
            t->text[frame] = make_name(names, frame);
    }
    return t->text[frame];
}

struct sibling {
    const char *name;
    uint32_t node;
};

static int cmp_sibling(const void *a, const void *b)
{
    return strcmp(((const struct sibling *)a)->name, ((const struct sibling *)b)->name);
}

/* Children in name order, and every node's offset: where it starts on its
 * row, in samples. A node is made after its parent, so one pass in index
 * order sees each parent placed before its children. */
static pf_err sort_and_place(struct tree *t, const struct pf_intern *names)
{
    struct sibling *sib = NULL;
    size_t cap = 0;

    for (size_t p = 0; p < t->n; p++) {
        size_t k = 0;
        for (uint32_t c = t->nodes[p].child; c != NONE; c = t->nodes[c].next) {
            if (k == cap) {
                cap = cap ? cap * 2 : 64;
                struct sibling *s = realloc(sib, cap * sizeof(*s));
                if (!s) {
                    free(sib);
                    return PF_ERR_NOMEM;
                }
                sib = s;
            }
            const char *name = name_of(t, names, t->nodes[c].frame);
            if (!name) {
                free(sib);
                return PF_ERR_NOMEM;
            }
            sib[k++] = (struct sibling){name, c};
        }
        if (!k)
            continue;
        qsort(sib, k, sizeof(*sib), cmp_sibling);
        uint64_t at = t->nodes[p].offset;
        t->nodes[p].child = sib[0].node;
        for (size_t i = 0; i < k; i++) {
            struct node *c = &t->nodes[sib[i].node];
            c->next = i + 1 < k ? sib[i + 1].node : NONE;
            c->offset = at;
            at += c->total;
        }
    }
    free(sib);
    return PF_OK;
}

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* "#rrggbb" of a hue (degrees, 0..360), saturation and lightness (0..1).
 * RGB, not CSS hsl(), so SVG 1.1 readers other than browsers get it too. */
static double absd(double v)
{
    return v < 0 ? -v : v;
}

static void hsl_rgb(unsigned hue, double s, double l, char out[8])
{
    hue %= 360;
    double c = (1 - absd(2 * l - 1)) * s;
    double x = c * (1 - absd((double)(hue % 120) / 60 - 1));
    double rgb[6][3] = {{c, x, 0}, {x, c, 0}, {0, c, x}, {0, x, c}, {x, 0, c}, {c, 0, x}};
    const double *v = rgb[hue / 60];
    double m = l - c / 2;
    snprintf(out, 8, "#%02x%02x%02x", (int)((v[0] + m) * 255 + 0.5), (int)((v[1] + m) * 255 + 0.5),
             (int)((v[2] + m) * 255 + 0.5));
}

/* The module of a native frame's label: "symbol (libfoo.so)" -> libfoo.so,
 * "libfoo.so+0x1f" -> libfoo.so (src/native/unwind.c makes these labels). */
static void native_module(const char *label, const char **mod, size_t *n)
{
    size_t len = strlen(label);
    const char *open = len && label[len - 1] == ')' ? strrchr(label, '(') : NULL;
    if (open) {
        *mod = open + 1;
        *n = (size_t)(label + len - 1 - *mod);
        return;
    }
    const char *plus = strstr(label, "+0x");
    *mod = label;
    *n = plus ? (size_t)(plus - label) : len;
}

static void colour_of(struct tree *t, const struct pf_intern *names, uint32_t frame, char out[8])
{
    if (frame == FR_ALL(t)) {
        strcpy(out, "#dcdcdc");
        return;
    }
    if (frame == FR_FAILED(t)) {
        strcpy(out, "#a8a8a8");
        return;
    }
    const struct pf_frame_text *f = frame < t->nframes ? pf_intern_frame_get(names, frame) : NULL;
    if (!f || f->kind == PF_FRAME_PSEUDO) {
        strcpy(out, "#c8c8c8");
        return;
    }
    /* The hue is the file's (or library's); the lightness varies a little
     * with the function, so neighbours from one file stay apart. */
    const char *function = pf_intern_text(names, f->name);
    double light = 0.62 + (double)(fnv1a(function, strlen(function)) % 13) / 100;
    if (f->kind == PF_FRAME_NATIVE) {
        const char *mod;
        size_t n;
        native_module(function, &mod, &n);
        hsl_rgb(fnv1a(mod, n), 0.25, light + 0.04, out);
        return;
    }
    const char *file = pf_intern_text(names, f->file);
    hsl_rgb(fnv1a(file, strlen(file)), 0.60, light, out);
}

/* s, escaped, cut to max characters: the first max - 2 and "..". An
 * invalid byte counts as one character, as it is written as U+FFFD. */
static void write_cut(FILE *out, const char *s, size_t max)
{
    size_t i = 0, chars = 0, cut = 0;
    if (max < 3)
        return;
    while (s[i] && chars <= max) {
        if (chars == max - 2)
            cut = i;
        int n = pf_utf8_len((const unsigned char *)s + i);
        i += n ? (size_t)n : 1;
        chars++;
    }
    if (chars <= max) {
        pf_escape_xml(out, s);
        return;
    }
    char *head = strndup(s, cut);
    if (head)
        pf_escape_xml(out, head);
    free(head);
    fputs("..", out);
}

/* A label that fits a box w wide: as many characters as fit with 3 px on
 * either side, none below 3. The script's fit() does the same on zoom. */
static void write_fitted(FILE *out, const char *s, double w)
{
    double room = (w - 6) / CHAR_W;
    if (room >= 3)
        write_cut(out, s, (size_t)room);
}

/* The script: interaction only. Frames carry their place in samples
 * (data-o, data-n), their row (data-d) and their name (data-i, an index
 * into the names of the JSON data), so a zoom re-places them exactly and a
 * search sums samples, not pixels. Kept free of "]]>" (it sits in CDATA). */
static const char *const SCRIPT[] = {
    "(function () {",
    "\"use strict\";",
    "function byId(id) { return document.getElementById(id); }",
    "var data = JSON.parse(byId(\"pf-data\").textContent);",
    "var names = data.names, total = data.total, W = data.width, X0 = data.x, CW = data.charw;",
    "var layer = byId(\"pf-frames\"), details = byId(\"pf-details\");",
    "var matched = byId(\"pf-matched\");",
    "var unzoom = byId(\"pf-unzoom\"), search = byId(\"pf-search\");",
    "var frames = [], zoomed = null, query = \"\";",
    "for (var k = 0; k < layer.children.length; k++) {",
    "  var g = layer.children[k];",
    "  g.pf = {g: g, rect: g.getElementsByTagName(\"rect\")[0],",
    "          text: g.getElementsByTagName(\"text\")[0],",
    "          i: +g.getAttribute(\"data-i\"), o: +g.getAttribute(\"data-o\"),",
    "          n: +g.getAttribute(\"data-n\"), d: +g.getAttribute(\"data-d\")};",
    "  frames.push(g.pf);",
    "}",
    "function pct(n, of) { return of ? (100 * n / of).toFixed(2) + \"%\" : \"0.00%\"; }",
    "function plural(n) { return n + (n === 1 ? \" sample\" : \" samples\"); }",
    "// The same cut as write_fitted() in src/output/writer_svg.c.",
    "function fit(label, w) {",
    "  var chars = Array.from(label), max = Math.floor((w - 6) / CW);",
    "  if (max < 3) return \"\";",
    "  return chars.length <= max ? label : chars.slice(0, max - 2).join(\"\") + \"..\";",
    "}",
    "// Zoomed on f: its descendants share the full width in proportion,",
    "// its ancestors span it (faded), everything else is hidden.",
    "function layout() {",
    "  var zo = zoomed ? zoomed.o : 0, zn = zoomed ? zoomed.n : total, zd = zoomed ? zoomed.d : 0;",
    "  for (var k = 0; k < frames.length; k++) {",
    "    var f = frames[k], above = f.d < zd, show, x, w;",
    "    if (above) {",
    "      show = f.o <= zo && f.o + f.n >= zo + zn; x = X0; w = W;",
    "    } else {",
    "      show = f.o >= zo && f.o + f.n <= zo + zn;",
    "      x = X0 + (f.o - zo) * W / zn; w = f.n * W / zn;",
    "    }",
    "    f.g.classList.toggle(\"z\", !show);",
    "    f.g.classList.toggle(\"a\", show && above);",
    "    if (!show) continue;",
    "    f.rect.setAttribute(\"x\", x.toFixed(2));",
    "    f.rect.setAttribute(\"width\", w.toFixed(2));",
    "    f.text.setAttribute(\"x\", (x + 3).toFixed(2));",
    "    f.text.textContent = fit(names[f.i], w);",
    "  }",
    "  unzoom.setAttribute(\"visibility\", zoomed ? \"visible\" : \"hidden\");",
    "}",
    "function zoom(f) { zoomed = f && f.d > 0 ? f : null; layout(); }",
    "function frameOf(el) {",
    "  for (; el && el !== layer; el = el.parentNode) if (el.pf) return el.pf;",
    "  return null;",
    "}",
    "function describe(f) {",
    "  var s = names[f.i] + \": \" + plural(f.n) + \", \" + pct(f.n, total);",
    "  if (zoomed && zoomed !== f) s += \" (\" + pct(f.n, zoomed.n) + \" of the zoomed box)\";",
    "  return s;",
    "}",
    "layer.addEventListener(\"mouseover\", function (e) {",
    "  var f = frameOf(e.target);",
    "  if (f) details.textContent = describe(f);",
    "});",
    "layer.addEventListener(\"mouseout\", function () { details.textContent = \" \"; });",
    "layer.addEventListener(\"click\", function (e) {",
    "  var f = frameOf(e.target);",
    "  if (f) zoom(f);",
    "});",
    "unzoom.addEventListener(\"click\", function () { zoom(null); });",
    "// A regular expression, or plain text when the query is not a valid one.",
    "function matcher(q) {",
    "  try { var re = new RegExp(q); return function (s) { return re.test(s); }; }",
    "  catch (err) { return function (s) { return s.indexOf(q) >= 0; }; }",
    "}",
    "// Matches, drawn or not, are spans of samples; nested ones (recursion,",
    "// a match called by a match) overlap, so the share is their union.",
    "function find(q) {",
    "  query = q;",
    "  var hit = [], spans = [], m = q ? matcher(q) : null;",
    "  for (var k = 0; m && k < names.length; k++) hit.push(m(names[k]));",
    "  for (k = 0; k < frames.length; k++) {",
    "    var f = frames[k], on = !!m && f.d > 0 && hit[f.i];",
    "    f.g.classList.toggle(\"m\", on);",
    "    if (on) spans.push([f.o, f.n]);",
    "  }",
    "  if (!m) { matched.textContent = \" \"; return; }",
    "  var h = data.hidden;",
    "  for (k = 0; k < h.length; k += 3) if (hit[h[k]]) spans.push([h[k + 1], h[k + 2]]);",
    "  spans.sort(function (a, b) { return a[0] - b[0]; });",
    "  var sum = 0, end = 0;",
    "  for (k = 0; k < spans.length; k++) {",
    "    var from = Math.max(spans[k][0], end), to = spans[k][0] + spans[k][1];",
    "    if (to > from) sum += to - from;",
    "    if (to > end) end = to;",
    "  }",
    "  matched.textContent =",
    "    \"Matched: \" + pct(sum, total) + \" (\" + sum + \" of \" + plural(total) + \")\";",
    "}",
    "search.addEventListener(\"input\", function () { find(search.value); });",
    "search.addEventListener(\"keydown\", function (e) {",
    "  if (e.key === \"Escape\") { search.value = \"\"; find(\"\"); search.blur(); }",
    "});",
    "// Ctrl-F (Cmd-F) opens our search, which sees every frame, drawn or not,",
    "// rather than the browser's, which finds only the labels that fit.",
    "document.addEventListener(\"keydown\", function (e) {",
    "  if ((e.ctrlKey || e.metaKey) && (e.key === \"f\" || e.key === \"F\")) {",
    "    e.preventDefault();",
    "    search.focus();",
    "    search.select();",
    "  } else if (e.key === \"Escape\" && document.activeElement !== search) {",
    "    zoom(null);",
    "  }",
    "});",
    "})();",
    NULL,
};

static const char STYLE[] =
    "text { fill: #000; white-space: pre; }\n"
    "#pf-title { font-size: 16px; }\n"
    "#pf-subtitle, #pf-note { fill: #444; }\n"
    ".btn { fill: #0645ad; cursor: pointer; text-decoration: underline; }\n"
    "#pf-frames g { cursor: pointer; }\n"
    "#pf-frames rect { stroke: #fff; stroke-width: 0.5; }\n"
    "#pf-frames text { pointer-events: none; }\n"
    "#pf-frames g:hover rect { stroke: #000; stroke-width: 1; }\n"
    "#pf-frames g.m rect { fill: #e040e0; }\n"
    "#pf-frames g.a { opacity: 0.6; }\n"
    "#pf-frames g.z { display: none; }\n"
    "#pf-search { box-sizing: border-box; width: 100%; height: 100%; font: 12px monospace; }\n";

static void write_header(FILE *out, const struct pf_agg *agg, const struct pf_write_opts *opts,
                         uint64_t all, size_t hidden, int height)
{
    const char *title = opts->title && *opts->title ? opts->title : "pyflame";
    uint64_t idle = pf_agg_idle(agg), failed = pf_agg_failed(agg);

    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n", out);
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"" FONT "\" font-size=\"12\">\n",
            IMAGE_W, height, IMAGE_W, height);
    fputs("<title>pyflame: ", out);
    pf_escape_xml(out, title);
    fputs("</title>\n<!-- pyflame " PYFLAME_VERSION
          ": a flame graph, root at the bottom (see docs/usage.md) -->\n",
          out);
    fprintf(out, "<style>\n%s</style>\n", STYLE);
    fprintf(out,
            "<rect id=\"pf-bg\" x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#f8f8f4\"/>\n",
            IMAGE_W, height);
    fprintf(out, "<text id=\"pf-title\" x=\"%d\" y=\"22\" text-anchor=\"middle\">", IMAGE_W / 2);
    write_cut(out, title, TITLE_CHARS);
    fprintf(out, "</text>\n<text id=\"pf-subtitle\" x=\"%d\" y=\"40\" text-anchor=\"middle\">",
            IMAGE_W / 2);
    fprintf(out, "%llu samples in %.2f s, one every %g s: %llu with a stack, ",
            (unsigned long long)all, opts->duration, opts->interval,
            (unsigned long long)pf_agg_stack_samples(agg));
    if (opts->include_idle)
        fprintf(out, "%llu idle, ", (unsigned long long)idle);
    else
        fprintf(out, "idle left out (-x), ");
    fprintf(out, "%llu failed</text>\n", (unsigned long long)failed);
    if (hidden)
        fprintf(
            out,
            "<text id=\"pf-note\" x=\"%d\" y=\"56\" text-anchor=\"middle\">%zu %s narrower than "
            "0.1%% of the width not drawn (search still counts %s)</text>\n",
            IMAGE_W / 2, hidden, hidden == 1 ? "box" : "boxes", hidden == 1 ? "it" : "them");
    fprintf(out,
            "<text id=\"pf-unzoom\" class=\"btn\" x=\"%d\" y=\"22\" visibility=\"hidden\">"
            "Reset zoom</text>\n",
            XPAD);
    fprintf(out,
            "<foreignObject x=\"%d\" y=\"6\" width=\"260\" height=\"24\">"
            "<input xmlns=\"http://www.w3.org/1999/xhtml\" id=\"pf-search\" type=\"search\" "
            "placeholder=\"Search (Ctrl-F)\" title=\"A name, a file or a regular expression\" "
            "autocomplete=\"off\"/>"
            "</foreignObject>\n",
            IMAGE_W - XPAD - 260);
}

static pf_err write_svg(FILE *out, const struct pf_agg *agg, const struct pf_intern *names,
                        const struct pf_write_opts *opts)
{
    size_t nframes = pf_intern_frame_count(names), nstacks = pf_agg_stack_count(agg);
    uint64_t idle = opts->include_idle ? pf_agg_idle(agg) : 0, failed = pf_agg_failed(agg);
    uint64_t all = pf_agg_stack_samples(agg) + idle + failed;
    struct tree t = {.nframes = (uint32_t)nframes};
    uint32_t *index = NULL; /* frame -> its place in the JSON names, + 1 */
    uint32_t *order = NULL; /* the JSON names' frames, in order */
    uint32_t nnames = 0;
    char *json = NULL;
    size_t json_len = 0;
    FILE *js = NULL;
    pf_err err = PF_ERR_NOMEM;

    if (nframes > NONE - 4)
        return PF_ERR_NOMEM;
    t.text = calloc(nframes + 3, sizeof(*t.text));
    index = calloc(nframes + 3, sizeof(*index));
    order = calloc(nframes + 3, sizeof(*order));
    uint32_t root;
    if (!t.text || !index || !order || new_node(&t, FR_ALL(&t), NONE, &root))
        goto out;
    t.nodes[root].total = all;
    for (size_t i = 0; i < nstacks; i++) {
        const uint32_t *ids;
        size_t depth;
        uint64_t count;
        uint32_t at = root;
        pf_agg_stack_at(agg, i, &ids, &depth, &count);
        for (size_t d = 0; d < depth; d++) {
            if ((err = child_of(&t, at, ids[d], &at)))
                goto out;
            t.nodes[at].total += count;
        }
    }
    err = PF_ERR_NOMEM;
    /* The samples without a stack, on the root row. --threads may already
     * have put a pseudo "(idle)" frame there (a sleeping thread with no
     * Python frame): one box, not two of the same name. */
    uint64_t extra[2] = {idle, failed};
    uint32_t extra_frame[2] = {FR_IDLE(&t), FR_FAILED(&t)};
    for (int e = 0; e < 2; e++) {
        if (!extra[e])
            continue;
        const char *label = e == 0 ? "(idle)" : "(failed)";
        uint32_t at = NONE;
        for (uint32_t c = t.nodes[root].child; c != NONE; c = t.nodes[c].next) {
            const char *name = name_of(&t, names, t.nodes[c].frame);
            if (!name)
                goto out;
            if (strcmp(name, label) == 0)
                at = c;
        }
        if (at == NONE && (err = child_of(&t, root, extra_frame[e], &at)))
            goto out;
        err = PF_ERR_NOMEM;
        t.nodes[at].total += extra[e];
    }
    if (!name_of(&t, names, FR_ALL(&t)) || (err = sort_and_place(&t, names)))
        goto out;
    err = PF_ERR_NOMEM;

    /* Which boxes are drawn: the graph's height is that of the deepest. */
    uint32_t rows = 0;
    size_t hidden = 0;
    for (size_t i = 0; i < t.n; i++) {
        const struct node *nd = &t.nodes[i];
        if (all && nd->total * MIN_SHARE >= all) {
            if (nd->depth + 1 > rows)
                rows = nd->depth + 1;
        } else if (all) {
            hidden++;
        }
        if (!index[nd->frame]) {
            order[nnames] = nd->frame;
            index[nd->frame] = ++nnames;
        }
    }
    int graph_h = (int)(rows ? rows : 1) * FRAME_H;
    int height = TOP + graph_h + 30;
    write_header(out, agg, opts, all, hidden, height);

    fputs("<g id=\"pf-frames\">\n", out);
    for (size_t i = 0; i < t.n && all; i++) {
        const struct node *nd = &t.nodes[i];
        if (nd->total * MIN_SHARE < all)
            continue;
        const char *name = t.text[nd->frame];
        char fill[8];
        double x = XPAD + (double)nd->offset * GRAPH_W / (double)all;
        double w = (double)nd->total * GRAPH_W / (double)all;
        int y = TOP + (int)(rows - 1 - nd->depth) * FRAME_H;
        colour_of(&t, names, nd->frame, fill);
        fprintf(out, "<g data-i=\"%u\" data-o=\"%llu\" data-n=\"%llu\" data-d=\"%u\"><title>",
                index[nd->frame] - 1, (unsigned long long)nd->offset, (unsigned long long)nd->total,
                nd->depth);
        pf_escape_xml(out, name);
        fprintf(out,
                ": %llu sample%s, %.2f%%</title><rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" "
                "height=\"%d\" fill=\"%s\"/><text x=\"%.2f\" y=\"%d\">",
                (unsigned long long)nd->total, nd->total == 1 ? "" : "s",
                100.0 * (double)nd->total / (double)all, x, y, w, FRAME_H - 1, fill, x + 3,
                y + FRAME_H - 4);
        write_fitted(out, name, w);
        fputs("</text></g>\n", out);
    }
    fputs("</g>\n", out);
    if (!all)
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">No samples</text>\n",
                IMAGE_W / 2, TOP + FRAME_H - 4);
    fprintf(out, "<text id=\"pf-details\" x=\"%d\" y=\"%d\"> </text>\n", XPAD, TOP + graph_h + 20);
    fprintf(out, "<text id=\"pf-matched\" x=\"%d\" y=\"%d\" text-anchor=\"end\"> </text>\n",
            IMAGE_W - XPAD, TOP + graph_h + 20);

    /* The data the script needs, as JSON, then escaped once more as XML
     * character data: no CDATA section, so no name can end it early. */
    js = open_memstream(&json, &json_len);
    if (!js)
        goto out;
    fprintf(js, "{\"total\":%llu,\"width\":%d,\"x\":%d,\"charw\":%g,\"names\":[",
            (unsigned long long)all, GRAPH_W, XPAD, CHAR_W);
    for (uint32_t i = 0; i < nnames; i++) {
        if (i)
            putc(',', js);
        pf_escape_json(js, t.text[order[i]]);
    }
    fputs("],\"hidden\":[", js);
    bool first = true;
    for (size_t i = 0; i < t.n && all; i++) {
        const struct node *nd = &t.nodes[i];
        if (nd->total * MIN_SHARE >= all)
            continue;
        fprintf(js, "%s%u,%llu,%llu", first ? "" : ",", index[nd->frame] - 1,
                (unsigned long long)nd->offset, (unsigned long long)nd->total);
        first = false;
    }
    fputs("]}", js);
    if (fclose(js) != 0) {
        js = NULL;
        goto out;
    }
    js = NULL;
    fputs("<script type=\"application/json\" id=\"pf-data\">", out);
    pf_escape_xml(out, json);
    fputs("</script>\n<script type=\"text/ecmascript\"><![CDATA[\n", out);
    for (size_t i = 0; SCRIPT[i]; i++) {
        fputs(SCRIPT[i], out);
        putc('\n', out);
    }
    fputs("]]></script>\n</svg>\n", out);
    err = fflush(out) != 0 || ferror(out) ? PF_ERR_IO : PF_OK;
out:
    if (js)
        fclose(js);
    free(json);
    if (t.text)
        for (size_t i = 0; i < nframes + 3; i++)
            free(t.text[i]);
    free(t.text);
    free(t.nodes);
    free(t.slots);
    free(index);
    free(order);
    return err;
}

const struct pf_writer pf_writer_svg = {
    .name = "svg",
    .write = write_svg,
};
