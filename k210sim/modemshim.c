/*
 * Modem-line shim for clients of the simulated K210 board's pty (LD_PRELOAD).
 *
 * A Linux pty has no DTR/RTS: TIOCMBIS/TIOCMBIC/TIOCMSET/TIOCMGET fail with ENOTTY, and kflash
 * gives up. Preloaded into the client (`hil sim wrap`), this library intercepts ioctl(): when the
 * real call fails with ENOTTY on a pty slave (major 136-143), it keeps the line state itself
 * (DTR and RTS asserted at open, as a real tty raises them), makes the call succeed, and sends a
 * datagram "DTR=x RTS=y" to the unix socket named by $SIM_MODEM_SOCK, which the simulator turns
 * into line changes. close() of such a fd sends "DTR=0 RTS=0", as a tty with HUPCL drops both.
 *
 * Baud barrier: a pty cannot order a termios change against the bytes written before it, and
 * kflash writes its ROM boot frame and at once drops its port back to 115200. So tcsetattr() on
 * a pty slave that changes the speed after bytes were written to it first sends "DRAIN" to
 * $SIM_MODEM_SOCK from an autobound datagram socket and waits (at most DRAIN_WAIT_S) for "OK":
 * the simulator answers once every byte the client wrote is on its line at the old baud.
 * Writes are seen through write() (pyserial, kflash and mpremote all use it).
 *
 * Every other call goes straight to libc. Built by k210sim/wrap.py with the system cc.
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

#define DRAIN_WAIT_S 1

static unsigned char tracked[MAX_FD];   /* fd is a pty slave whose lines we keep */
static unsigned char dirty[MAX_FD];     /* bytes written to this pty slave since the last drain */
static int state[MAX_FD];               /* TIOCM_DTR | TIOCM_RTS bits */

static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_tcsetattr)(int, int, const struct termios *);

static void resolve(void)
{
    if (!real_ioctl)
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    if (!real_close)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    if (!real_write)
        real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (!real_tcsetattr)
        real_tcsetattr = (int (*)(int, int, const struct termios *))dlsym(RTLD_NEXT, "tcsetattr");
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
    if (fd >= 0 && fd < MAX_FD) {
        dirty[fd] = 0;
        if (tracked[fd]) {
            tracked[fd] = 0;
            notify(0);
        }
    }
    return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t count)
{
    ssize_t n;

    resolve();
    n = real_write(fd, buf, count);
    if (n > 0 && fd >= 0 && fd < MAX_FD && !dirty[fd]) {
        int saved = errno;
        if (is_pty_slave(fd))
            dirty[fd] = 1;
        errno = saved;
    }
    return n;
}

/* Ask the simulator to put what we wrote on its line; returns when it says OK or after the
 * timeout (no simulator, an old one without DRAIN: carry on, as before the barrier existed). */
static void drain_barrier(void)
{
    const char *path = getenv("SIM_MODEM_SOCK");
    struct sockaddr_un addr, self;
    struct timeval tv = {DRAIN_WAIT_S, 0};
    char buf[16];
    int s;

    if (!path || !*path || strlen(path) >= sizeof addr.sun_path)
        return;
    s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    memset(&self, 0, sizeof self);
    self.sun_family = AF_UNIX;
    /* autobind: an abstract address, so the simulator has somewhere to send its answer */
    if (bind(s, (struct sockaddr *)&self, sizeof(sa_family_t)) == 0) {
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        memset(&addr, 0, sizeof addr);
        addr.sun_family = AF_UNIX;
        strcpy(addr.sun_path, path);
        if (sendto(s, "DRAIN", 5, 0, (struct sockaddr *)&addr, sizeof addr) == 5)
            (void)recv(s, buf, sizeof buf, 0);
    }
    real_close(s);
}

/* glibc's tcsetattr issues its ioctl internally, so the barrier wraps tcsetattr itself. */
int tcsetattr(int fd, int act, const struct termios *t)
{
    struct termios now;
    int saved = errno;

    resolve();
    if (t && fd >= 0 && fd < MAX_FD && dirty[fd] && tcgetattr(fd, &now) == 0
        && (cfgetospeed(&now) != cfgetospeed(t) || cfgetispeed(&now) != cfgetispeed(t))) {
        drain_barrier();
        dirty[fd] = 0;
    }
    errno = saved;
    return real_tcsetattr(fd, act, t);
}
