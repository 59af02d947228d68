/* trainer.h — the state of one fine-tuning run, shared by the loop
 * (finetune.c) and checkpointing (checkpoint.c). Not a public header. */
#ifndef HN_TRAINER_H
#define HN_TRAINER_H

#include <stdio.h>

#include "model/precision.h"
#include "model/llama.h"
#include "train/finetune.h"
#include "train/seqs.h"
#include "train/tokens.h"

typedef struct trainer {
    ft_config cfg;
    const ft_callbacks *cb;
    hn_model *m;
    lora_set *lora, *lora_grad;  /* LoRA only */
    ft_tokens tokens;            /* LoRA: the token rows trained too */
    ft_stop_check stop;          /* after training */
    model_precision precision;   /* resolved */
    float *params, *grads;       /* trainable slab and its gradient */
    float *adam_m, *adam_v;
    size_t n_train;
    llama_acts *acts;
    int micro_b, max_t;          /* activation plan: micro-batch rows x tokens */
    int pack_rows, pack_len;     /* packing: rows x input tokens per micro-batch */
    int32_t *ids, *tgt;          /* (micro_b, max_t) or (pack_rows, pack_len) */
    float *w;
    int *pack_row, *pack_off;    /* (batch_size) placement of each example */
    ft_seqs train, valid;
    int *order;                  /* this epoch's example order */
    int order_epoch;
    int n_epochs, batch_size;
    double lr_mult, lr;
    float weight_decay, clip_norm;
    int warmup_steps;
    int steps_per_epoch, total_steps, step; /* step = optimizer steps done */
    int valid_cursor;
    double last_full_valid_loss; /* at the last epoch end (NaN before) */
    double last_train_loss;
    long long trained_tokens;
    char csv_path[1100];
} trainer;

/* checkpoint.c */
hn_status ckpt_save(trainer *t, const char *dir, hn_err *err);
hn_status ckpt_load(trainer *t, const char *dir, hn_err *err);
/* Writes the final model (adapter or full weights) + hone_finetune.json. */
hn_status ckpt_save_model(trainer *t, const char *dir, hn_err *err);
/* Rewrites dir/hone_finetune.json (after the stop check). */
hn_status ckpt_save_info(trainer *t, const char *dir, hn_err *err);

#endif
