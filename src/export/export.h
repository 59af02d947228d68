/* export.h — writing a loaded (and possibly fine-tuned) Llama-family model
 * out of hone: a llama.cpp-compatible GGUF v3 file, or a Hugging Face
 * directory (config.json, sharded safetensors, tokenizer files), or a LoRA
 * adapter alone as a llama.cpp GGUF LoRA adapter, plus the quality guard that
 * loads an export back and compares held-out loss.
 *
 * The model is always the f32 slab of hn_model (HF layout); a LoRA adapter is
 * merged into it before a model export (model_apply_finetune). Nothing here
 * prints; see docs/export.md for the exact keys, names and dtypes written. */
#ifndef HN_EXPORT_H
#define HN_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"
#include "format/gguf.h"
#include "model/lora.h"
#include "model/model.h"

typedef enum export_format { EXPORT_GGUF = 0, EXPORT_SAFETENSORS, EXPORT_GGUF_ADAPTER } export_format;
typedef enum export_dtype { EXPORT_F32 = 0, EXPORT_F16, EXPORT_BF16, EXPORT_Q8_0 } export_dtype;

typedef struct export_opts {
    export_format format;
    export_dtype dtype;
    uint64_t shard_bytes; /* safetensors: shard above this many bytes (0 = default 2000 MB) */
    const char *name;     /* general.name / _name_or_path; NULL = the model's name */
} export_opts;

void export_opts_default(export_opts *o);
/* "gguf" / "safetensors" (also "hf") / "gguf-adapter"; "f32" / "f16" / "bf16" / "q8_0". */
bool export_format_parse(const char *s, export_format *out);
bool export_dtype_parse(const char *s, export_dtype *out);
const char *export_dtype_name(export_dtype d);

/* Writes m as a GGUF v3 file at path (atomically). Llama only. */
hn_status export_gguf(const hn_model *m, const export_opts *o, const char *path, hn_err *err);
/* Writes the LoRA adapter l (made for base m) alone as a llama.cpp GGUF LoRA
 * adapter at path (atomically): general.type "adapter", adapter.type "lora",
 * adapter.lora.alpha, tensors "<base GGUF name>.lora_a" / ".lora_b" with the
 * B rows of q/k permuted as the base's q/k rows are. Llama only. An adapter
 * with trainable token rows is refused (HN_EUNSUPPORTED): llama.cpp adapters
 * cannot carry them; the merged export can. */
hn_status export_gguf_adapter(const hn_model *m, const lora_set *l, const export_opts *o,
                              const char *path, hn_err *err);
/* Writes m as a Hugging Face model directory (created if missing). Q8_0 is
 * refused (safetensors has no such dtype). */
hn_status export_hf(const hn_model *m, const export_opts *o, const char *dir, hn_err *err);

/* --- helpers shared by the writers (also used by tests) --- */

/* GGUF q/k row order from HF's rotate-half order, per head: GGUF row 2j =
 * HF row j, GGUF row 2j+1 = HF row hd/2 + j. dst and src must not overlap. */
void export_permute_heads(float *dst, const float *src, int n_heads, int hd, int cols);
/* Adds tokenizer.ggml.* (and tokenizer.chat_template / hone.chat_template)
 * for m to w: model "llama" for SPM tokenizers, "gpt2" + pre for byte-level
 * BPE (HN_EUNSUPPORTED when the pre-tokenizer has no llama.cpp name). */
hn_status export_gguf_tokenizer(gguf_writer *w, const hn_model *m, hn_err *err);
/* A tokenizer.json for t: for an SPM tokenizer the Llama-2 "legacy" form (BPE
 * vocab, merges derived from vocab + scores as transformers'
 * SentencePieceExtractor does); for byte-level BPE its normalizer, Split +
 * ByteLevel pre-tokenizers, added tokens, vocab and merges in rank order. */
hn_status export_tokenizer_json(const tok *t, json_t **out, hn_err *err);
/* The merges of export_tokenizer_json as "left right" strings (in order);
 * caller frees each and the array. */
hn_status export_spm_merges(const tok *t, char ***out, size_t *n, hn_err *err);

/* --- quality guard --- */

typedef struct export_guard {
    bool ran;            /* false: no validation file was given */
    double loss_ref;     /* held-out loss of the in-memory (adapter-on-base) model */
    double loss_export;  /* held-out loss of the exported model, loaded back */
    double rel_diff;     /* |export - ref| / ref */
    long tokens;         /* reference tokens scored */
    int examples;
} export_guard;

/* Held-out loss (token-weighted mean over the reference answers of the chat
 * JSONL file valid, first limit examples; 0 = all) of ref, and of the model
 * loaded from exported. */
hn_status export_guard_run(const hn_model *ref, const char *exported, const char *valid,
                           int limit, export_guard *out, hn_err *err);
/* Held-out loss of one model on a set (helper of export_guard_run). */
hn_status export_heldout_loss(const hn_model *m, const char *valid, int limit, double *loss,
                              long *tokens, int *examples, hn_err *err);

#endif
