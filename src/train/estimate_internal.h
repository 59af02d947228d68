/* estimate_internal.h — what estimate.c and estimate_cache.c share: one
 * method's cached measurements, the model identity and the cache calls.
 * Not a public header. */
#ifndef HN_TRAIN_ESTIMATE_INTERNAL_H
#define HN_TRAIN_ESTIMATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "train/estimate.h"

/* Everything measured for one model + shape + method + thread count. */
typedef struct est_record {
    double step_seconds, eval_seconds, load_seconds;
    int bench_steps;
    size_t n_params, lora_params, activations;
} est_record;

/* "realpath|size|mtime" of a model file or directory; false if absent. */
bool est_model_id(const char *path, char *out, size_t cap);
/* Looks up / stores the record of method for e's shape and threads. A cache
 * that cannot be read is a miss; put returns false if it could not write. */
bool est_cache_get(const ft_estimate *e, const char *model_id, ft_method method, est_record *r);
bool est_cache_put(const ft_estimate *e, const char *model_id, ft_method method,
                   const est_record *r);
/* Resident bytes of this process (0 if unknown). */
size_t est_resident_bytes(void);

#endif
