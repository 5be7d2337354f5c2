/* src/target/procstat.c: fields of /proc/PID/stat counted from the last ')', since
 * a command name may hold spaces and parentheses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pyflame/target/procstat.h"

/* Fields 1-22 of a real line, with a hostile command name. */
static const char LINE[] = "4242 (a) b (S) c) R 1 4242 4242 0 -1 4194560 1085 0 0 0 3 1 0 0 20 0 "
                           "1 0 987654 12345678 2000\n";

static void state(void **unused)
{
    (void)unused;
    char s = 0;
    assert_true(pf_procstat_state(LINE, &s));
    assert_int_equal(s, 'R');
    assert_true(pf_procstat_state("1 (x) Z", &s));
    assert_int_equal(s, 'Z');
    assert_false(pf_procstat_state("1 (x)", &s));
    assert_false(pf_procstat_state("1 (x) ", &s));
    assert_false(pf_procstat_state("no parenthesis", &s));
}

static void numbered_fields(void **unused)
{
    (void)unused;
    unsigned long long v = 0;
    assert_true(pf_procstat_field(LINE, 4, &v));
    assert_int_equal(v, 1); /* ppid */
    assert_true(pf_procstat_field(LINE, 22, &v));
    assert_int_equal(v, 987654); /* starttime */
    assert_true(pf_procstat_field(LINE, 24, &v));
    assert_int_equal(v, 2000);
    assert_false(pf_procstat_field(LINE, 25, &v));
    assert_false(pf_procstat_field("1 (x)", 3, &v));
}

/* Our own stat: the state of a running process is R. */
static void read_self(void **unused)
{
    (void)unused;
    char buf[1024], s = 0;
    assert_int_equal(pf_procstat_read(getpid(), buf, sizeof(buf)), PF_OK);
    assert_true(pf_procstat_state(buf, &s));
    assert_int_equal(s, 'R');
    assert_int_not_equal(pf_procstat_read(-1, buf, sizeof(buf)), PF_OK);
}

/* Our own status: the keys the callers use, found by exact name. */
static void status_values(void **unused)
{
    (void)unused;
    long v = -1;
    assert_true(pf_procstatus_value(getpid(), "Pid", &v));
    assert_int_equal(v, getpid());
    assert_true(pf_procstatus_value(0, "Uid", &v)); /* the first of four: the real uid */
    assert_int_equal(v, (long)getuid());
    v = -1;
    assert_true(pf_procstatus_value(0, "VmHWM", &v)); /* "12345 kB" */
    assert_true(v > 0);
    /* A key is a whole name: "Pid" above did not take "PPid"'s line. */
    assert_true(pf_procstatus_value(0, "PPid", &v));
    assert_int_equal(v, getppid());
    assert_false(pf_procstatus_value(0, "NoSuchKey", &v));
    assert_false(pf_procstatus_value(-1, "Pid", &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state),
        cmocka_unit_test(numbered_fields),
        cmocka_unit_test(read_self),
        cmocka_unit_test(status_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
