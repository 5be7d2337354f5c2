/* The command line: Pyflame's flags, their defaults, and every kind of bad
 * value refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pyflame/app/cli.h"

#define PARSE(o, d, ...)                                                                           \
    ({                                                                                             \
        char *argv_[] = {"pyflame", __VA_ARGS__, NULL};                                            \
        pf_cli_parse((int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_, (o), (d));                \
    })

static void defaults_with_pid(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "-p", "1234"), PF_OK);
    assert_int_equal(o.pid, 1234);
    assert_true(o.seconds == 1.0);
    assert_true(o.rate == 0.01);
    assert_true(o.line_numbers);
    assert_false(o.exclude_idle);
    assert_null(o.trace_argv);
    assert_null(o.output);
    assert_false(o.bare_pid);
}

static void all_short_flags(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "-s", "2.5", "-r", "0.001", "-o", "out.txt", "-x", "-n", "-p", "7"), PF_OK);
    assert_true(o.seconds == 2.5);
    assert_true(o.rate == 0.001);
    assert_string_equal(o.output, "out.txt");
    assert_true(o.exclude_idle);
    assert_false(o.line_numbers);
    assert_int_equal(o.pid, 7);
}

static void long_flags(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "--seconds=3", "--rate", "0.5", "--output=x", "--exclude-idle",
                           "--no-line-numbers", "--abi=3.6", "--pid=99"), PF_OK);
    assert_true(o.seconds == 3);
    assert_true(o.rate == 0.5);
    assert_string_equal(o.abi, "3.6");
    assert_int_equal(o.pid, 99);
}

/* Everything after -t is the command, flags included. */
static void trace_takes_the_rest(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    /* o.trace_argv points into argv, so argv must outlive it here. */
    char *argv[] = {"pyflame", "-r", "0.001", "-t", "python3", "-s", "x.py", "-p", NULL};
    assert_int_equal(pf_cli_parse(8, argv, &o, &d), PF_OK);
    assert_non_null(o.trace_argv);
    assert_string_equal(o.trace_argv[0], "python3");
    assert_string_equal(o.trace_argv[1], "-s");
    assert_string_equal(o.trace_argv[3], "-p");
    assert_null(o.trace_argv[4]);
    assert_true(o.seconds < 0); /* unlimited with -t */
    assert_true(o.rate == 0.001);
    assert_int_equal(PARSE(&o, &d, "-s", "2", "--trace", "python3"), PF_OK);
    assert_true(o.seconds == 2); /* an explicit -s still counts */
}

static void bare_pid_is_deprecated_but_works(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "-s", "1", "4321"), PF_OK);
    assert_int_equal(o.pid, 4321);
    assert_true(o.bare_pid);
}

static void zero_seconds_is_a_snapshot(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "-s", "0", "-p", "1"), PF_OK);
    assert_true(o.seconds == 0);
}

static void bad_values(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "-r", "0", "-p", "1"), PF_ERR_USAGE);
    assert_non_null(strstr(d.msg, "-r"));
    assert_int_equal(PARSE(&o, &d, "-r", "-0.01", "-p", "1"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-r", "fast", "-p", "1"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-r", "nan", "-p", "1"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-r", "inf", "-p", "1"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-s", "ten", "-p", "1"), PF_ERR_USAGE);
    assert_non_null(strstr(d.msg, "-s"));
    assert_int_equal(PARSE(&o, &d, "-s", "-1", "-p", "1"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-s", "1x", "-p", "1"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-p", "abc"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-p", "-5"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-p", "0"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "--frobnicate", "-p", "1"), PF_ERR_USAGE);
    assert_non_null(strstr(d.msg, "--frobnicate"));
    assert_int_equal(PARSE(&o, &d, "-q", "-p", "1"), PF_ERR_USAGE);
    assert_non_null(strstr(d.msg, "-q"));
    assert_int_equal(PARSE(&o, &d, "-p"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-t"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-p", "1", "-t", "python3"), PF_ERR_USAGE);
    assert_int_equal(PARSE(&o, &d, "-s", "1"), PF_ERR_USAGE); /* nothing to profile */
    assert_int_equal(PARSE(&o, &d, "1", "2"), PF_ERR_USAGE);
}

static void thread_flags(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "--threads", "--show-threads", "-x", "-p", "5"), PF_OK);
    assert_true(o.threads);
    assert_true(o.show_threads);
    assert_true(o.jitter); /* the default */
    assert_int_equal(PARSE(&o, &d, "--no-jitter", "-p", "5"), PF_OK);
    assert_false(o.jitter);
    assert_int_equal(PARSE(&o, &d, "--no-jitter", "--jitter", "-p", "5"), PF_OK);
    assert_true(o.jitter);
    assert_int_equal(PARSE(&o, &d, "--threads", "--show-threads", "-x", "-p", "5"), PF_OK);
    assert_true(o.exclude_idle);
    assert_false(o.dump);
    assert_int_equal(PARSE(&o, &d, "-d", "-p", "5"), PF_OK);
    assert_true(o.dump);
    assert_int_equal(PARSE(&o, &d, "--dump", "-t", "python3"), PF_ERR_USAGE);
}

/* --native goes with every mode: -p, -t (before the command, not after),
 * --threads and -d. Off by default. */
static void native_flag(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "-p", "5"), PF_OK);
    assert_false(o.native);
    assert_int_equal(PARSE(&o, &d, "--native", "-p", "5"), PF_OK);
    assert_true(o.native);
    assert_int_equal(PARSE(&o, &d, "--native", "--threads", "-d", "-p", "5"), PF_OK);
    assert_true(o.native && o.threads && o.dump);
    /* o.trace_argv points into argv, so argv must outlive it here. */
    char *argv[] = {"pyflame", "--native", "-t", "python3", "--native", NULL};
    assert_int_equal(pf_cli_parse(5, argv, &o, &d), PF_OK);
    assert_true(o.native);
    assert_string_equal(o.trace_argv[1], "--native"); /* the command's own argument */
    assert_int_equal(PARSE(&o, &d, "-t", "python3", "--native"), PF_OK);
    assert_false(o.native);
    assert_int_equal(PARSE(&o, &d, "--native=yes", "-p", "5"), PF_ERR_USAGE);
}

/* --nonblocking goes with -p, -t and --threads, and not with --native,
 * which must stop threads to read their registers. */
static void nonblocking_flag(void **state)
{
    struct pf_options o;
    struct pf_diag d;
    (void)state;
    assert_int_equal(PARSE(&o, &d, "-p", "5"), PF_OK);
    assert_false(o.nonblocking);
    assert_int_equal(PARSE(&o, &d, "--nonblocking", "--threads", "-p", "5"), PF_OK);
    assert_true(o.nonblocking && o.threads);
    assert_int_equal(PARSE(&o, &d, "--nonblocking", "-t", "python3"), PF_OK);
    assert_true(o.nonblocking);
    assert_int_equal(PARSE(&o, &d, "--nonblocking", "--native", "-p", "5"), PF_ERR_USAGE);
    assert_non_null(strstr(d.msg, "--nonblocking"));
    assert_non_null(strstr(d.msg, "--native"));
}

static void format_flags(void **state)
{
    struct pf_options o;
    struct pf_diag d;
    (void)state;
    assert_int_equal(PARSE(&o, &d, "-p", "5"), PF_OK);
    assert_null(o.format);
    assert_false(o.sort_own || o.table_lines || o.no_realtime);
    assert_int_equal(PARSE(&o, &d, "-f", "speedscope", "-p", "5"), PF_OK);
    assert_string_equal(o.format, "speedscope");
    assert_int_equal(PARSE(&o, &d, "--format=table", "--sort=own", "--table-lines", "-p", "5"), PF_OK);
    assert_string_equal(o.format, "table");
    assert_true(o.sort_own && o.table_lines);
    /* Pyflame's --flamechart is --format=flamechart. */
    assert_int_equal(PARSE(&o, &d, "--flamechart", "-p", "5"), PF_OK);
    assert_string_equal(o.format, "flamechart");
    assert_int_equal(PARSE(&o, &d, "--flamechart", "-f", "flamechart", "-p", "5"), PF_OK);
    assert_int_equal(PARSE(&o, &d, "--flamechart", "-f", "table", "-p", "5"), PF_ERR_USAGE);
    assert_non_null(strstr(d.msg, "two formats"));
    assert_int_equal(PARSE(&o, &d, "-f", "html", "-p", "5"), PF_ERR_USAGE);
    assert_non_null(strstr(d.msg, "unknown format 'html'"));
    assert_non_null(strstr(d.msg, "collapsed|"));
    assert_int_equal(PARSE(&o, &d, "--sort=calls", "-p", "5"), PF_ERR_USAGE);
    assert_non_null(strstr(d.msg, "--sort"));
    assert_int_equal(PARSE(&o, &d, "--no-realtime", "-p", "5"), PF_OK);
    assert_true(o.no_realtime);
}

static void help_and_version(void **state)
{
    (void)state;
    struct pf_options o;
    struct pf_diag d;
    assert_int_equal(PARSE(&o, &d, "-h"), PF_OK);
    assert_true(o.help);
    assert_int_equal(PARSE(&o, &d, "--version"), PF_OK);
    assert_true(o.version);
    assert_non_null(strstr(pf_cli_usage(), "--exclude-idle"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_with_pid),
        cmocka_unit_test(all_short_flags),
        cmocka_unit_test(long_flags),
        cmocka_unit_test(trace_takes_the_rest),
        cmocka_unit_test(bare_pid_is_deprecated_but_works),
        cmocka_unit_test(zero_seconds_is_a_snapshot),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(thread_flags),
        cmocka_unit_test(native_flag),
        cmocka_unit_test(nonblocking_flag),
        cmocka_unit_test(format_flags),
        cmocka_unit_test(help_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
