/* An application that embeds CPython, for pyflame's discovery tests.
 *
 *   host [--delay SECS] [--init-delay SECS] [--no-init SECS] [--ready PATH]
 *        LIB SCRIPT [ARG...]
 *
 * Built twice (meson.build): linked with a pyenv libpython
 * (-DPF_EMBED_LINKED; LIB is ignored, pass "-"), and without it, loading
 * LIB with dlopen() at run time as uWSGI and plugin hosts do. It then runs
 * SCRIPT through the C API as __main__, with sys.argv = [SCRIPT, ARG...].
 * The dlopen build needs no Python headers: it declares the few functions
 * it calls, whose signatures are the same from 2.7 to 3.13.
 *
 * --delay waits before loading Python (a process that has no runtime yet
 * when pyflame attaches); --init-delay between loading and Py_Initialize (a
 * runtime not initialised yet); --no-init loads it but never initialises it,
 * writes PATH (--ready) and sleeps SECS: a runtime that never becomes
 * ready, or a fake one (fakepy.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef PF_EMBED_LINKED
#include <Python.h>
#else
#include <dlfcn.h>
#endif

static void pause_for(double secs)
{
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int write_ready(const char *path)
{
    char tmp[4096];
    FILE *f;

    if (!path)
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (!(f = fopen(tmp, "w")) || fputs("ready\n", f) < 0 || fclose(f) != 0 ||
        rename(tmp, path) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* "import sys; sys.argv = ['a', 'b']" with each argument quoted. */
static char *argv_code(char **args, int n)
{
    size_t cap = 64;
    for (int i = 0; i < n; i++)
        cap += 4 * strlen(args[i]) + 8;
    char *code = malloc(cap), *p = code;
    if (!code)
        return NULL;
    p += sprintf(p, "import sys; sys.argv = [");
    for (int i = 0; i < n; i++) {
        *p++ = '\'';
        for (const char *c = args[i]; *c; c++) {
            if (*c == '\\' || *c == '\'')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '\'';
        *p++ = ',';
    }
    strcpy(p, "]");
    return code;
}

#ifndef PF_EMBED_LINKED
/* The C API the host uses, declared here so the build needs no headers. */
static void (*Py_Initialize)(void);
static void (*Py_Finalize)(void);
static int (*PyRun_SimpleString)(const char *);
static int (*PyRun_SimpleFileExFlags)(FILE *, const char *, int, void *);

static int load(const char *lib)
{
    /* RTLD_GLOBAL: extension modules find the C API in the global scope. */
    void *h = dlopen(lib, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        fprintf(stderr, "host: %s\n", dlerror());
        return -1;
    }
    *(void **)&Py_Initialize = dlsym(h, "Py_Initialize");
    *(void **)&Py_Finalize = dlsym(h, "Py_Finalize");
    *(void **)&PyRun_SimpleString = dlsym(h, "PyRun_SimpleString");
    *(void **)&PyRun_SimpleFileExFlags = dlsym(h, "PyRun_SimpleFileExFlags");
    return 0;
}
#endif

int main(int argc, char **argv)
{
    double delay = 0, init_delay = 0, no_init = -1;
    const char *ready = NULL;
    int i = 1;

    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--delay") == 0)
            delay = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--init-delay") == 0)
            init_delay = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--no-init") == 0)
            no_init = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--ready") == 0)
            ready = argv[i + 1];
        else
            break;
    }
    if (argc - i < 1 || (no_init < 0 && argc - i < 2)) {
        fprintf(stderr,
                "usage: %s [--delay SECS] [--init-delay SECS] [--no-init SECS] "
                "[--ready PATH] LIB SCRIPT [ARG...]\n",
                argv[0]);
        return 2;
    }
    const char *lib = argv[i];
    pause_for(delay);
#ifdef PF_EMBED_LINKED
    (void)lib;
#else
    if (load(lib) != 0)
        return 2;
#endif
    if (no_init >= 0) {
        if (write_ready(ready) != 0)
            return 1;
        pause_for(no_init);
        return 0;
    }
#ifndef PF_EMBED_LINKED
    if (!Py_Initialize || !Py_Finalize || !PyRun_SimpleString || !PyRun_SimpleFileExFlags) {
        fprintf(stderr, "host: %s lacks the C API functions it needs\n", lib);
        return 2;
    }
#endif
    const char *script = argv[i + 1];
    char *code = argv_code(argv + i + 1, argc - i - 1);
    FILE *f = fopen(script, "r");
    if (!code || !f) {
        perror(script);
        return 2;
    }
    pause_for(init_delay);
    Py_Initialize();
    int rc = PyRun_SimpleString(code) != 0 || PyRun_SimpleFileExFlags(f, script, 1, NULL) != 0;
    Py_Finalize();
    free(code);
    return rc;
}
