/* file.c — POSIX file helpers: mmap, whole reads, atomic replace. */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

hn_status hn_map_open(const char *path, hn_map *m, hn_err *err) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hn_errf(err, HN_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hn_errf(err, HN_EIO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return hn_errf(err, HN_EIO, "%s: mmap failed: %s", path, strerror(errno));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return HN_OK;
}

void hn_map_close(hn_map *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

hn_status hn_file_read(const char *path, size_t max_bytes, char **out, size_t *len,
                       hn_err *err) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return hn_errf(err, HN_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (max_bytes && cap >= max_bytes) break;
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
        if (max_bytes && n > max_bytes) break;
    }
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr) {
        free(buf);
        return hn_errf(err, HN_EIO, "%s: read error", path);
    }
    if (max_bytes && n > max_bytes) {
        free(buf);
        return hn_errf(err, HN_EINVAL, "%s: file larger than the %zu-byte limit", path,
                       max_bytes);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return HN_OK;
}

static hn_status fsync_dir_of(const char *path, hn_err *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return hn_errf(err, HN_EIO, "%s: cannot open directory", path);
    fsync(fd);
    close(fd);
    return HN_OK;
}

hn_status hn_file_write_atomic(const char *path, const void *const *parts,
                               const size_t *lens, int n, hn_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return hn_errf(err, HN_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *p = parts[i];
        size_t left = lens[i];
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                int e = errno;
                close(fd);
                unlink(tmp);
                return hn_errf(err, HN_EIO, "%s: write failed: %s", path, strerror(e));
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return hn_errf(err, HN_EIO, "%s: fsync failed: %s", path, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return hn_errf(err, HN_EIO, "%s: rename failed: %s", path, strerror(e));
    }
    return fsync_dir_of(path, err);
}

bool hn_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool hn_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

hn_status hn_mkdirs(const char *path, hn_err *err) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return hn_errf(err, HN_EINVAL, "path too long: %s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return hn_errf(err, HN_EIO, "%s: mkdir failed: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return hn_errf(err, HN_EIO, "%s: mkdir failed: %s", tmp, strerror(errno));
    return HN_OK;
}

bool hn_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap;
}
