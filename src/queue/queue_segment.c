/* queue_segment: the append-only segment files of the blob store (see queue_segment.h) — the
 * active segment's state, batch appends covered by one fdatasync, blob ids that carry their
 * location, and punching released blobs out of their segment. */
#include "queue/queue_segment.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"

static pthread_mutex_t seg_lock = PTHREAD_MUTEX_INITIALIZER;
static int seg_fd = -1;        /* the active segment, open for writing (under seg_lock) */
static uint64_t seg_end;       /* bytes written to it so far (under seg_lock) */
static atomic_uint seg_active; /* its number; 0 = none */

static __thread char seg_err[PATH_MAX + 128];

static const char *seg_errno(const char *what, const char *path)
{
    snprintf(seg_err, sizeof(seg_err), "%s %s: %s", what, path, strerror(errno));
    return seg_err;
}

void queue_segment_path(const char *data_dir, uint32_t segment, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/blobs/seg/%08" PRIX32, data_dir, segment);
}

uint32_t queue_segment_active(void)
{
    return atomic_load(&seg_active);
}

static void seg_close_locked(void)
{
    if (seg_fd >= 0)
        close(seg_fd);
    seg_fd = -1;
    seg_end = 0;
    atomic_store(&seg_active, 0);
}

void queue_segment_reset(void)
{
    pthread_mutex_lock(&seg_lock);
    seg_close_locked();
    pthread_mutex_unlock(&seg_lock);
}

/* The highest segment number present in blobs/seg (0 when none). */
static uint32_t seg_highest(const char *dir)
{
    uint32_t high = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        unsigned long v = strtoul(e->d_name, &end, 16);
        if (end && end != e->d_name && *end == '\0' && v <= UINT32_MAX && v > high)
            high = (uint32_t)v;
    }
    closedir(d);
    return high;
}

static int fsync_path(const char *path, const char **err_r)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *err_r = seg_errno("cannot open directory", path);
        return -1;
    }
    int r = fsync(fd);
    if (r < 0)
        *err_r = seg_errno("cannot fsync directory", path);
    close(fd);
    return r;
}

/* Start a new segment after the highest one on disk; its directory entry is made durable
 * before anything in it can be acknowledged. */
static int seg_start_locked(const char *data_dir, const char **err_r)
{
    seg_close_locked();
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/blobs/seg", data_dir);
    if (mkdir(dir, 0750) == 0) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s/blobs", data_dir);
        if (fsync_path(parent, err_r) < 0)
            return -1;
    } else if (errno != EEXIST) {
        *err_r = seg_errno("cannot create", dir);
        return -1;
    }
    uint32_t next = seg_highest(dir) + 1;
    for (int tries = 0; tries < 16; tries++, next++) {
        if (next == 0)
            next = 1;
        queue_segment_path(data_dir, next, path);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0) {
            *err_r = seg_errno("cannot create", path);
            return -1;
        }
        if (fsync_path(dir, err_r) < 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        seg_fd = fd;
        seg_end = 0;
        atomic_store(&seg_active, next);
        log_info("message segment %s started", path);
        return 0;
    }
    *err_r = "cannot create a new message segment: names taken";
    return -1;
}

static uint64_t align_up(uint64_t v)
{
    return (v + QUEUE_SEGMENT_ALIGN - 1) / QUEUE_SEGMENT_ALIGN * QUEUE_SEGMENT_ALIGN;
}

/* pwritev until everything is written (advances through the iovec on short writes). */
static int write_all_at(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    while (cnt > 0) {
        int now = cnt > IOV_MAX ? IOV_MAX : cnt;
        ssize_t w = pwritev(fd, iov, now, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        off += (uint64_t)w;
        size_t left = (size_t)w;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

int queue_segment_append(const char *data_dir, struct queue_segment_piece *pieces, size_t n,
                         const char **err_r)
{
    static const char zeros[QUEUE_SEGMENT_ALIGN];
    if (n == 0)
        return 0;
    struct iovec stack_iov[130];
    struct iovec *iov = 2 * n <= 130 ? stack_iov : malloc(2 * n * sizeof(*iov));
    if (!iov) {
        *err_r = "out of memory";
        return -1;
    }
    int ret = -1;
    pthread_mutex_lock(&seg_lock);
    if ((seg_fd < 0 || seg_end >= QUEUE_SEGMENT_MAX) && seg_start_locked(data_dir, err_r) < 0)
        goto out;
    uint32_t seg = atomic_load(&seg_active);
    uint64_t start = align_up(seg_end), pos = start;
    int cnt = 0;
    for (size_t i = 0; i < n; i++) {
        struct queue_segment_piece *p = &pieces[i];
        if (pos != align_up(pos)) {
            iov[cnt++] = (struct iovec){.iov_base = (void *)zeros, .iov_len = align_up(pos) - pos};
            pos = align_up(pos);
        }
        snprintf(p->blob_id, sizeof(p->blob_id), "%s.%08" PRIX32 ".%" PRIX64 ".%zX", p->queue_id,
                 seg, pos, p->len);
        p->segment = seg;
        iov[cnt++] = (struct iovec){.iov_base = (void *)p->data, .iov_len = p->len};
        pos += p->len;
    }
    char path[PATH_MAX];
    queue_segment_path(data_dir, seg, path);
    if (pos == start) { /* only empty pieces: nothing to write */
        ret = 0;
        goto out;
    }
    if (write_all_at(seg_fd, iov, cnt, start) < 0) {
        *err_r = seg_errno("cannot write", path);
        seg_close_locked(); /* what was written is never referenced; start afresh */
        goto out;
    }
    if (fdatasync(seg_fd) < 0) {
        *err_r = seg_errno("cannot fdatasync", path);
        seg_close_locked();
        goto out;
    }
    seg_end = pos;
    ret = 0;
out:
    pthread_mutex_unlock(&seg_lock);
    if (iov != stack_iov)
        free(iov);
    return ret;
}

/* strtoull accepts signs, blanks and "0x": a field must start with a hex digit. */
static bool hex_field(const char *p)
{
    return isxdigit((unsigned char)p[0]) && !(p[0] == '0' && (p[1] == 'x' || p[1] == 'X'));
}

bool queue_segment_locate(const char *blob_id, uint32_t *segment, uint64_t *offset,
                          uint64_t *length)
{
    const char *dot = strchr(blob_id, '.');
    if (!dot || !hex_field(dot + 1))
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long s = strtoull(dot + 1, &end, 16);
    if (errno || end == dot + 1 || *end != '.' || s == 0 || s > UINT32_MAX)
        return false;
    const char *o = end + 1;
    if (!hex_field(o))
        return false;
    unsigned long long off = strtoull(o, &end, 16);
    if (errno || end == o || *end != '.')
        return false;
    const char *l = end + 1;
    if (!hex_field(l))
        return false;
    unsigned long long len = strtoull(l, &end, 16);
    if (errno || end == l || *end != '\0')
        return false;
    *segment = (uint32_t)s;
    *offset = off;
    *length = len;
    return true;
}

void queue_segment_punch(const char *data_dir, uint32_t segment, uint64_t offset, uint64_t length)
{
    if (length == 0)
        return;
    char path[PATH_MAX];
    queue_segment_path(data_dir, segment, path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            log_warn("cannot open %s to release a message: %s", path, strerror(errno));
        return;
    }
    /* Blobs start aligned; the padding up to the next boundary is theirs too. */
    uint64_t len = align_up(offset + length) - offset;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len) < 0 &&
        errno != EOPNOTSUPP)
        log_warn("cannot release %llu bytes of %s: %s", (unsigned long long)len, path,
                 strerror(errno));
    close(fd);
}
