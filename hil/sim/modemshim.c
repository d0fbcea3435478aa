/*
 * Modem-line shim for clients of the simulated K210 board's pty (LD_PRELOAD).
 *
 * A Linux pty has no DTR/RTS: TIOCMBIS/TIOCMBIC/TIOCMSET/TIOCMGET fail with ENOTTY, and kflash
 * gives up. Preloaded into the client (`hil sim wrap`), this library intercepts ioctl(): when the
 * real call fails with ENOTTY on a pty slave (major 136-143), it keeps the line state itself
 * (DTR and RTS asserted at open, as a real tty raises them), makes the call succeed, and sends a
 * datagram "DTR=x RTS=y" to the unix socket named by $SIM_MODEM_SOCK, which the simulator turns
 * into line changes. close() of such a fd sends "DTR=0 RTS=0", as a tty with HUPCL drops both.
 * Every other call goes straight to libc. Built by hil/sim/wrap.py with the system cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define MAX_FD 4096
#define LINES (TIOCM_DTR | TIOCM_RTS)

static unsigned char tracked[MAX_FD];   /* fd is a pty slave whose lines we keep */
static int state[MAX_FD];               /* TIOCM_DTR | TIOCM_RTS bits */

static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);

static void resolve(void)
{
    if (!real_ioctl)
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    if (!real_close)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
}

static int is_pty_slave(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
        return 0;
    return major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143;
}

static void notify(int bits)
{
    const char *path = getenv("SIM_MODEM_SOCK");
    struct sockaddr_un addr;
    char msg[32];
    int saved = errno, s, n;

    if (!path || !*path || strlen(path) >= sizeof addr.sun_path)
        return;
    s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, path);
    n = snprintf(msg, sizeof msg, "DTR=%d RTS=%d", !!(bits & TIOCM_DTR), !!(bits & TIOCM_RTS));
    sendto(s, msg, (size_t)n, 0, (struct sockaddr *)&addr, sizeof addr);
    real_close(s);
    errno = saved;
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;
    int rc, err, *bits;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    resolve();
    rc = real_ioctl(fd, request, arg);
    err = errno;
    if (rc == 0 || err != ENOTTY || fd < 0 || fd >= MAX_FD)
        return rc;
    if (request != TIOCMBIS && request != TIOCMBIC && request != TIOCMSET && request != TIOCMGET)
        return rc;
    if (!tracked[fd] && !is_pty_slave(fd)) {
        errno = err;
        return rc;
    }
    bits = (int *)arg;
    if (!bits) {
        errno = EFAULT;
        return -1;
    }
    if (!tracked[fd]) {
        tracked[fd] = 1;
        state[fd] = LINES;
    }
    switch (request) {
    case TIOCMGET:
        *bits = state[fd];
        return 0;
    case TIOCMBIS:
        state[fd] |= *bits & LINES;
        break;
    case TIOCMBIC:
        state[fd] &= ~(*bits & LINES);
        break;
    default: /* TIOCMSET */
        state[fd] = *bits & LINES;
        break;
    }
    notify(state[fd]);
    return 0;
}

int close(int fd)
{
    resolve();
    if (fd >= 0 && fd < MAX_FD && tracked[fd]) {
        tracked[fd] = 0;
        notify(0);
    }
    return real_close(fd);
}
