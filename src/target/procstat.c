#include "pyflame/target/procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

pf_err pf_procstat_read(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pf_err_from_errno(errno);
    /* The kernel formats the whole file in one read of this size. */
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return PF_ERR_NOPROC;
    buf[n] = '\0';
    return PF_OK;
}

/* Field 3 onward: after the last ')' and its space. */
static const char *after_comm(const char *text)
{
    const char *p = strrchr(text, ')');
    return p && p[1] == ' ' ? p + 2 : NULL;
}

bool pf_procstat_state(const char *text, char *state)
{
    const char *p = after_comm(text);
    if (!p || !*p)
        return false;
    *state = *p;
    return true;
}

bool pf_procstat_field(const char *text, int field, unsigned long long *value)
{
    const char *p = after_comm(text);
    for (int f = 3; p && f <= field; f++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return false;
        if (f == field) {
            *value = strtoull(p, NULL, 10);
            return true;
        }
        p = strchr(p, ' ');
    }
    return false;
}

bool pf_procstatus_value(pid_t pid, const char *key, long *value)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    bool found = false;

    if (pid < 0)
        return false;
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    /* "Key:\tvalue[\tmore]" (proc(5)); a number, perhaps with a unit. */
    while (!found && fgets(line, sizeof(line), f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            found = sscanf(line + klen + 1, "%ld", value) == 1;
    fclose(f);
    return found;
}

size_t pf_procstat_cmdline(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    size_t n = 0;

    if (cap == 0)
        return 0;
    buf[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    /* Arguments are NUL-separated, with a NUL after the last. */
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0' || buf[i] == '\n' || buf[i] == '\t')
            buf[i] = ' ';
    buf[n] = '\0';
    return n;
}
