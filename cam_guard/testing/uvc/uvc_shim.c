/*
 * uvc_shim.c: an LD_PRELOAD library that makes a FIFO at /dev/videoN answer like a USB (UVC) camera.
 *
 * The camera itself (formats, controls, buffers, who owns the stream, faults) lives in the test's
 * Python controller (camera.py beside this file); this library only carries each call there and back.
 *
 *  open()   A path that resolves to /dev/video* and is a FIFO (the controller creates those, in a
 *           private mount namespace) is opened read-only and non-blocking whatever the caller asked:
 *           select()/poll() on it are then the kernel's own: readable when the controller has written
 *           one byte per filled buffer, never writable (ustreamer reads "writable" as "disconnected"),
 *           hung up when the camera is unplugged. /proc/PID/fd shows the node, as for a real camera.
 *           One unix socket per open file goes to the controller ($UVC_EMU_SOCKET: one per camera).
 *  ioctl()  sends the request number and the argument struct; the reply carries the struct back and,
 *           for DQBUF, the frame bytes, which land in the buffer memory.
 *  mmap()   maps the buffers, held in a memfd that this library sizes after REQBUFS.
 *  close()  drops the fd at once, like the kernel; the socket closes when the last call still using
 *           it returns, or when the process dies: that is how the controller learns the camera is free.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/videodev2.h>

#define SOCKET_ENV "UVC_EMU_SOCKET"
#define MAX_FDS 4096

/* Wire protocol, little-endian, mirrored in camera.py. */
enum { OP_OPEN = 1, OP_IOCTL = 2 };
struct wire_request {
    uint32_t op;
    uint32_t request;  /* the ioctl number, as the kernel sees it: 32 bits */
    uint32_t size;     /* bytes of argument that follow */
    uint32_t reserved;
};
struct wire_reply {
    int32_t result;    /* 0, -errno, or RESULT_HANG */
    uint32_t size;     /* bytes of argument that follow */
    uint32_t payload;  /* frame bytes that follow (DQBUF) */
    uint32_t reserved;
    uint64_t aux;      /* REQBUFS: bytes per buffer */
};
struct wire_open {
    uint32_t pid;
    uint32_t flags;
    uint64_t dev;      /* identity of the FIFO that was opened: which plug-in of the camera */
    uint64_t ino;
    /* followed by the resolved path, NUL-terminated */
};
/* A flattened v4l2_ext_control: the real one points into the caller's memory. */
struct wire_ext_control {
    uint32_t id;
    uint32_t size;
    int64_t value;
};
struct wire_ext_controls {
    uint32_t which;
    uint32_t count;
    uint32_t error_idx;
    uint32_t reserved;
};
#define RESULT_HANG 1
#define MAX_EXT_CONTROLS 64

struct handle {
    int fd;              /* what the application holds: the FIFO's read end */
    int sock;            /* connection to the controller */
    int nonblocking;     /* the application opened with O_NONBLOCK */
    int memfd;           /* buffer memory, after REQBUFS */
    size_t mem_size;
    unsigned char *mem;  /* this library's own mapping of memfd, where DQBUF writes frames */
    int refs;            /* one for the fd table, one per call in flight */
    pthread_mutex_t call_lock;  /* one request on the socket at a time */
};

static struct handle *table[MAX_FDS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

#define REAL(name) real_##name
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static ssize_t (*real_read)(int, void *, size_t);

/* Looked up on first use: another library's constructor may open files before ours runs. */
static void resolve(void) {
    if (real_read) return;
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    __atomic_store_n(&real_read, dlsym(RTLD_NEXT, "read"), __ATOMIC_RELEASE);
}

/* ---- fd table ------------------------------------------------------------------------------- */

static struct handle *acquire(int fd) {
    struct handle *h = NULL;
    /* Unlocked first look: nearly every fd a process touches is not a camera. */
    if (fd < 0 || fd >= MAX_FDS || !__atomic_load_n(&table[fd], __ATOMIC_ACQUIRE)) return NULL;
    pthread_mutex_lock(&table_lock);
    h = table[fd];
    if (h) h->refs++;
    pthread_mutex_unlock(&table_lock);
    return h;
}

static void release(struct handle *h) {
    int last;
    pthread_mutex_lock(&table_lock);
    last = --h->refs == 0;
    pthread_mutex_unlock(&table_lock);
    if (!last) return;
    if (h->mem) munmap(h->mem, h->mem_size);
    if (h->memfd >= 0) REAL(close)(h->memfd);
    REAL(close)(h->sock);  /* the controller sees the camera released */
    pthread_mutex_destroy(&h->call_lock);
    free(h);
}

/* ---- socket I/O ----------------------------------------------------------------------------- */

static int send_all(int sock, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = send(sock, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int recv_all(int sock, void *buf, size_t len) {
    char *p = buf;
    while (len) {
        ssize_t n = recv(sock, p, len, 0);
        if (n < 0 && errno == EINTR) continue;  /* a signal handler ran; the "driver" call goes on */
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int discard(int sock, size_t len) {
    char scratch[4096];
    while (len) {
        size_t n = len < sizeof scratch ? len : sizeof scratch;
        if (recv_all(sock, scratch, n) < 0) return -1;
        len -= n;
    }
    return 0;
}

/* A wedged driver: the call never returns and no signal handler runs in this thread (Ctrl-C's
 * KeyboardInterrupt never comes); SIGKILL still ends the process, as with a killable kernel wait. */
static void hang_forever(void) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) pause();
}

/* Send one request with `size` bytes of argument; read the reply header and up to `out_size` bytes of
 * the argument it returns into `out`. The caller reads reply->payload bytes itself.
 * Returns 0, or -1 when the controller is gone. */
static int call(struct handle *h, uint32_t op, uint32_t request, const void *arg, uint32_t size,
                void *out, uint32_t out_size, struct wire_reply *reply) {
    struct wire_request req = {op, request, size, 0};
    if (send_all(h->sock, &req, sizeof req) < 0 || (size && send_all(h->sock, arg, size) < 0)) return -1;
    if (recv_all(h->sock, reply, sizeof *reply) < 0) return -1;
    if (reply->result == RESULT_HANG) hang_forever();
    if (reply->size) {
        uint32_t keep = reply->size < out_size ? reply->size : out_size;
        if (keep && recv_all(h->sock, out, keep) < 0) return -1;
        if (discard(h->sock, reply->size - keep) < 0) return -1;
    }
    return 0;
}

/* ---- open ----------------------------------------------------------------------------------- */

/* Only absolute /dev paths are looked at; everything else goes straight to the real call. */
static int is_emulated_node(const char *path, char resolved[PATH_MAX]) {
    struct stat st;
    if (!path || strncmp(path, "/dev/", 5) != 0 || !getenv(SOCKET_ENV)) return 0;
    if (!realpath(path, resolved)) return 0;
    if (strncmp(resolved, "/dev/video", 10) != 0) return 0;
    return stat(resolved, &st) == 0 && S_ISFIFO(st.st_mode);
}

static int connect_controller(const char *path, size_t len) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int sock;
    if (len >= sizeof addr.sun_path) return -1;
    memcpy(addr.sun_path, path, len);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    while (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno == EINTR) continue;
        REAL(close)(sock);
        return -1;
    }
    return sock;
}

/* $UVC_EMU_SOCKET lists one controller per emulated camera, ':'-separated; the one that made this
 * FIFO accepts the open, the others answer ENODEV. Returns 0 with h->sock connected, or -errno. */
static int attach_controller(struct handle *h, const void *msg, uint32_t len) {
    const char *list = getenv(SOCKET_ENV);
    int err = -ENODEV;  /* no controller: the camera is gone as far as anyone can tell */
    while (list && *list) {
        size_t n = strcspn(list, ":");
        struct wire_reply reply;
        h->sock = connect_controller(list, n);
        if (h->sock >= 0) {
            if (call(h, OP_OPEN, 0, msg, len, NULL, 0, &reply) == 0) {
                if (reply.result == 0) return 0;
                if (reply.result != -ENODEV) err = reply.result;
            }
            REAL(close)(h->sock);
        }
        list += n + (list[n] == ':');
    }
    return err;
}

static int open_emulated(const char *resolved, int flags) {
    struct stat st;
    struct handle *h;
    char msg[sizeof(struct wire_open) + PATH_MAX];
    struct wire_open *info = (struct wire_open *)msg;
    size_t path_len = strlen(resolved) + 1;
    int err;
    int fd = REAL(openat)(AT_FDCWD, resolved, O_RDONLY | O_NONBLOCK | (flags & O_CLOEXEC));
    if (fd < 0) return -1;  /* unplugged between the check and here: ENOENT, as for a real node */
    if (fd >= MAX_FDS || fstat(fd, &st) < 0) {
        REAL(close)(fd);
        errno = EMFILE;
        return -1;
    }
    h = calloc(1, sizeof *h);
    if (!h) {
        REAL(close)(fd);
        errno = ENOMEM;
        return -1;
    }
    h->fd = fd;
    h->nonblocking = (flags & O_NONBLOCK) != 0;
    h->memfd = -1;
    h->refs = 1;
    pthread_mutex_init(&h->call_lock, NULL);
    info->pid = (uint32_t)getpid();
    info->flags = (uint32_t)flags;
    info->dev = (uint64_t)st.st_dev;
    info->ino = (uint64_t)st.st_ino;
    memcpy(msg + sizeof *info, resolved, path_len);
    err = attach_controller(h, msg, (uint32_t)(sizeof *info + path_len));
    if (err < 0) {
        pthread_mutex_destroy(&h->call_lock);
        free(h);
        REAL(close)(fd);
        errno = -err;
        return -1;
    }
    pthread_mutex_lock(&table_lock);
    __atomic_store_n(&table[fd], h, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&table_lock);
    return fd;
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode) {
    char resolved[PATH_MAX];
    resolve();
    if (is_emulated_node(path, resolved)) return open_emulated(resolved, flags);
    return REAL(openat)(dirfd, path, flags, mode);
}

/* open()'s mode argument is there only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags)                                                        \
    ({                                                                         \
        va_list ap_;                                                           \
        mode_t mode_ = 0;                                                      \
        va_start(ap_, flags);                                                  \
        if ((flags) & (O_CREAT | O_TMPFILE)) mode_ = (mode_t)va_arg(ap_, int); \
        va_end(ap_);                                                           \
        mode_;                                                                 \
    })

int open(const char *path, int flags, ...) { return open_common(AT_FDCWD, path, flags, MODE_ARG(flags)); }
int openat(int dirfd, const char *path, int flags, ...) { return open_common(dirfd, path, flags, MODE_ARG(flags)); }

/* The 64-bit and _FORTIFY_SOURCE spellings of the same calls. */
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));
int __open_2(const char *path, int flags) { return open_common(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));
int __openat_2(int dirfd, const char *path, int flags) { return open_common(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char *path, int flags) __attribute__((alias("__openat_2")));

/* ---- close, read, mmap ---------------------------------------------------------------------- */

int close(int fd) {
    struct handle *h = NULL;
    resolve();
    if (fd >= 0 && fd < MAX_FDS && __atomic_load_n(&table[fd], __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&table_lock);
        h = table[fd];
        table[fd] = NULL;
        pthread_mutex_unlock(&table_lock);
    }
    if (h) release(h);
    return REAL(close)(fd);
}

/* UVC cameras offer streaming I/O only (no V4L2_CAP_READWRITE): read() is refused, as uvcvideo does;
 * it would otherwise eat the FIFO's frame-ready bytes. */
ssize_t read(int fd, void *buf, size_t len) {
    struct handle *h = acquire(fd);
    resolve();
    if (!h) return REAL(read)(fd, buf, len);
    release(h);
    errno = EINVAL;
    return -1;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset) {
    struct handle *h = acquire(fd);
    void *p;
    resolve();
    if (!h) return REAL(mmap)(addr, len, prot, flags, fd, offset);
    pthread_mutex_lock(&h->call_lock);
    if (h->memfd < 0 || offset < 0 || (size_t)offset + len > h->mem_size) {
        errno = EINVAL;
        p = MAP_FAILED;
    } else {
        p = REAL(mmap)(addr, len, prot, flags, h->memfd, offset);
    }
    pthread_mutex_unlock(&h->call_lock);
    release(h);
    return p;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset) __attribute__((alias("mmap")));

/* ---- ioctl ---------------------------------------------------------------------------------- */

/* After REQBUFS: `count` buffers of `length` bytes, each at offset index * length. */
static int resize_buffers(struct handle *h, uint32_t count, uint64_t length) {
    size_t size = (size_t)count * (size_t)length;
    if (h->mem) munmap(h->mem, h->mem_size);
    if (h->memfd >= 0) REAL(close)(h->memfd);  /* mappings the application still has stay valid */
    h->mem = NULL;
    h->memfd = -1;
    h->mem_size = 0;
    if (!size) return 0;
    h->memfd = memfd_create("uvc-emulated-buffers", MFD_CLOEXEC);
    if (h->memfd < 0 || ftruncate(h->memfd, (off_t)size) < 0) return -1;
    h->mem = REAL(mmap)(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, h->memfd, 0);
    if (h->mem == MAP_FAILED) {
        h->mem = NULL;
        return -1;
    }
    h->mem_size = size;
    return 0;
}

static int ext_ctrls(struct handle *h, uint32_t request, struct v4l2_ext_controls *ctrls) {
    struct {
        struct wire_ext_controls head;
        struct wire_ext_control items[MAX_EXT_CONTROLS];
    } msg;
    struct wire_reply reply;
    uint32_t i, size;
    if (ctrls->count > MAX_EXT_CONTROLS) return -E2BIG;
    msg.head = (struct wire_ext_controls){ctrls->which, ctrls->count, 0, 0};
    for (i = 0; i < ctrls->count; i++) {
        msg.items[i].id = ctrls->controls[i].id;
        msg.items[i].size = ctrls->controls[i].size;
        msg.items[i].value = ctrls->controls[i].value;  /* every control of a camera is 32-bit */
    }
    size = (uint32_t)(sizeof msg.head + ctrls->count * sizeof msg.items[0]);
    if (call(h, OP_IOCTL, request, &msg, size, &msg, size, &reply) < 0) return -ENODEV;
    ctrls->error_idx = msg.head.error_idx;
    for (i = 0; i < ctrls->count; i++) ctrls->controls[i].value = (int32_t)msg.items[i].value;
    return reply.result;
}

static int dqbuf(struct handle *h, uint32_t request, struct v4l2_buffer *buf) {
    struct wire_reply reply;
    for (;;) {
        if (call(h, OP_IOCTL, request, buf, sizeof *buf, buf, sizeof *buf, &reply) < 0) return -ENODEV;
        if (reply.result == -EAGAIN && !h->nonblocking) {
            /* A blocking DQBUF sleeps until a buffer is filled (or the camera goes away). */
            struct pollfd pfd = {h->fd, POLLIN, 0};
            if (poll(&pfd, 1, -1) < 0 && errno == EINTR) return -EINTR;
            continue;
        }
        break;
    }
    if (reply.payload) {
        size_t offset = buf->m.offset;
        if (!h->mem || offset + reply.payload > h->mem_size) {
            discard(h->sock, reply.payload);
            return -EIO;
        }
        if (recv_all(h->sock, h->mem + offset, reply.payload) < 0) return -ENODEV;
    }
    if (reply.result == 0) {
        char token;  /* this buffer's frame-ready byte: select() now waits for the next one */
        REAL(read)(h->fd, &token, 1);
    }
    return reply.result;
}

static int forward(struct handle *h, uint32_t request, void *arg) {
    struct wire_reply reply;
    uint32_t size = _IOC_DIR(request) == _IOC_NONE ? 0 : _IOC_SIZE(request);
    uint32_t out_size = (_IOC_DIR(request) & _IOC_READ) ? size : 0;
    if (call(h, OP_IOCTL, request, arg, size, arg, out_size, &reply) < 0) return -ENODEV;
    if (reply.payload && discard(h->sock, reply.payload) < 0) return -ENODEV;
    if (request == VIDIOC_REQBUFS && reply.result == 0 &&
        resize_buffers(h, ((struct v4l2_requestbuffers *)arg)->count, reply.aux) < 0)
        return -ENOMEM;
    return reply.result;
}

int ioctl(int fd, unsigned long request_arg, ...) {
    /* Callers such as ustreamer pass the request through an int, so it arrives sign-extended;
     * the kernel looks at 32 bits only, and so does this. */
    uint32_t request = (uint32_t)request_arg;
    struct handle *h;
    void *arg;
    va_list ap;
    int result;
    va_start(ap, request_arg);
    arg = va_arg(ap, void *);
    va_end(ap);
    resolve();
    h = acquire(fd);
    if (!h) return REAL(ioctl)(fd, request_arg, arg);
    pthread_mutex_lock(&h->call_lock);
    if (_IOC_TYPE(request) != 'V')
        result = -ENOTTY;  /* not a V4L2 call: a camera node answers none of them (TCGETS, FIONREAD...) */
    else if (request == VIDIOC_DQBUF)
        result = dqbuf(h, request, arg);
    else if (request == VIDIOC_G_EXT_CTRLS || request == VIDIOC_S_EXT_CTRLS || request == VIDIOC_TRY_EXT_CTRLS)
        result = ext_ctrls(h, request, arg);
    else
        result = forward(h, request, arg);
    pthread_mutex_unlock(&h->call_lock);
    release(h);
    if (result < 0) {
        errno = -result;
        return -1;
    }
    return 0;
}
