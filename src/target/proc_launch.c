/* proc_launch: -t, starting the command as a traced child (proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_impl.h"

pf_err pf_proc_launch(char *const argv[], bool stdout_to_stderr, bool follow,
                      struct pf_diag *diag, struct pf_proc **out)
{
    int go[2], report[2];
    struct pf_proc *p;
    pid_t child;
    pf_err err;

    if (!argv || !argv[0])
        return pf_diag_set(diag, PF_ERR_USAGE, "-t needs a command to run");
    if (pipe2(go, O_CLOEXEC) != 0)
        return pf_diag_errno(diag, PF_ERR_IO, errno, "pipe");
    if (pipe2(report, O_CLOEXEC) != 0) {
        close(go[0]);
        close(go[1]);
        return pf_diag_errno(diag, PF_ERR_IO, errno, "pipe");
    }
    child = fork();
    if (child < 0) {
        err = pf_diag_errno(diag, PF_ERR_IO, errno, "fork");
        close(go[0]), close(go[1]), close(report[0]), close(report[1]);
        return err;
    }
    if (child == 0) {
        /* The command gets the signal state a shell would give it, not ours. */
        sigset_t none;
        char c;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        if (stdout_to_stderr)
            dup2(STDERR_FILENO, STDOUT_FILENO);
        close(go[1]);
        close(report[0]);
        /* Wait until the parent has seized us, so that we are traced from
         * the exec on. No signal is involved, so no stop can leak. */
        while (read(go[0], &c, 1) < 0 && errno == EINTR)
            ;
        execvp(argv[0], argv);
        int e = errno;
        if (write(report[1], &e, sizeof(e)) < 0)
            _exit(127);
        _exit(127);
    }
    close(go[0]);
    close(report[1]);
    if (!(p = pf_proc_new_root(child, follow))) {
        close(go[1]);
        close(report[0]);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return PF_ERR_NOMEM;
    }
    p->launched = true;
    if (ptrace(PTRACE_SEIZE, child, 0, (void *)p->tr->options) != 0 || !pf_proc_add(p, child)) {
        err = pf_proc_find(p, child) || errno != ENOMEM
                  ? pf_diag_errno(diag, PF_ERR_PERM, errno, "ptrace(PTRACE_SEIZE) of the launched command")
                  : PF_ERR_NOMEM;
        close(go[1]);
        close(report[0]);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        pf_proc_free_root(p);
        return err;
    }
    close(go[1]); /* let the child exec */
    int child_errno = 0;
    ssize_t r;
    while ((r = read(report[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
        ;
    close(report[0]);
    if (r > 0) {
        /* exec failed: the child exits 127 by itself; reap it. */
        int status;
        while (waitpid(child, &status, __WALL) > 0 && !WIFEXITED(status) && !WIFSIGNALED(status))
            ptrace(PTRACE_CONT, child, 0, 0);
        pf_proc_free_root(p);
        return pf_diag_errno(diag, child_errno == ENOENT ? PF_ERR_NOTFOUND : PF_ERR_IO, child_errno,
                             "cannot run %s", argv[0]);
    }
    /* Wait for the exec stop: from here on the new program runs. */
    for (;;) {
        int status;
        pid_t tid = waitpid(child, &status, __WALL);
        if (tid < 0) {
            if (errno == EINTR)
                continue;
            err = pf_diag_errno(diag, PF_ERR_IO, errno, "waitpid");
            goto fail;
        }
        enum outcome o = pf_proc_handle(p, tid, status, true);
        if (o == GONE) {
            err = pf_diag_set(diag, PF_ERR_EXITED, "%s exited before it started", argv[0]);
            goto fail;
        }
        if (o == EXECED) {
            p->exec_seen = false;
            pf_proc_cont(pf_proc_find(p, child), 0);
            break;
        }
        if (o == HELD)
            pf_proc_cont(pf_proc_find(p, child), pf_proc_find(p, child)->pending_sig), pf_proc_find(p, child)->pending_sig = 0;
    }
    *out = p;
    return PF_OK;
fail:
    pf_proc_detach(p);
    return err;
}
