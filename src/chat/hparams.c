/* hparams.c — "auto" hyperparameter rules (see hparams.h, docs/data.md). */
#include "chat/hparams.h"

int chat_auto_epochs(size_t n) {
    if (n == 0) return 1;
    if (n * 3 < 100) return (int)(100 / n < 25 ? 100 / n : 25);
    if (n * 3 > 25000) return (int)(25000 / n > 1 ? 25000 / n : 1);
    return 3;
}

int chat_auto_batch_size(size_t n) {
    size_t b = n * 2 / 1000; /* floor(0.002 n), as ft_auto_batch_size */
    if (b < 1) b = 1;
    if (b > 256) b = 256;
    if (n && b > n) b = n;
    return (int)b;
}

double chat_auto_lr_multiplier(int batch_size) {
    (void)batch_size;
    return 1.0;
}
