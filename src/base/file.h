/* file.h — whole-file reads, read-only memory maps and atomic writes.
 *
 * Weights are mapped, never copied, when the format allows; everything that
 * hone persists (checkpoints, uploads, exports) goes through hn_file_write_atomic
 * so that a kill -9 leaves either the old file or the complete new one. */
#ifndef HN_FILE_H
#define HN_FILE_H

#include <stddef.h>
#include <stdbool.h>
#include "base/err.h"

typedef struct hn_map {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
} hn_map;

/* Maps `path` read-only. On success the caller owns the map (hn_map_close). */
hn_status hn_map_open(const char *path, hn_map *m, hn_err *err);
void hn_map_close(hn_map *m);

/* Reads the whole file into a malloc'd, NUL-terminated buffer (*out, *len).
 * Refuses files larger than max_bytes (0 = no limit). */
hn_status hn_file_read(const char *path, size_t max_bytes, char **out, size_t *len,
                       hn_err *err);

/* Writes parts[0..n) to path via "path.tmp.<pid>", fsync, rename, fsync(dir). */
hn_status hn_file_write_atomic(const char *path, const void *const *parts,
                               const size_t *lens, int n, hn_err *err);

bool hn_path_is_dir(const char *path);
bool hn_path_exists(const char *path);
/* mkdir -p */
hn_status hn_mkdirs(const char *path, hn_err *err);
/* Joins a directory and a name into out (returns false if it does not fit). */
bool hn_path_join(char *out, size_t cap, const char *dir, const char *name);

#endif
