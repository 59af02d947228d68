/* tok.h — tokenizers: SentencePiece-style BPE with byte fallback (Llama 1/2,
 * stories260K; TOK_SPM) and byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM;
 * TOK_BPE_BYTES), behind one interface.
 *
 * A tokenizer is built from GGUF metadata (tokenizer.ggml.*), from a Hugging
 * Face tokenizer.json, or from GPT-2's vocab.json + merges.txt. Encoding never
 * reads past the input; invalid UTF-8 is encoded through byte-fallback tokens
 * (SPM) or byte-level pieces (BPE_BYTES). */
#ifndef HN_TOK_H
#define HN_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "format/gguf.h"

typedef enum tok_kind { TOK_SPM = 0, TOK_BPE_BYTES = 1 } tok_kind;

typedef struct tok tok;

hn_status tok_from_gguf(const gguf_file *f, tok **out, hn_err *err);
/* path: a tokenizer.json file. */
hn_status tok_from_hf_json(const char *path, tok **out, hn_err *err);
/* GPT-2's vocab.json + merges.txt pair (byte-level BPE with GPT-2's
 * pre-tokenizer; special tokens from a sibling tokenizer_config.json, else
 * <|endoftext|>). Errors name the file and line. */
hn_status tok_from_vocab_merges(const char *vocab_path, const char *merges_path, tok **out,
                                hn_err *err);
/* A Hugging Face model directory: its tokenizer.json, else vocab.json +
 * merges.txt; HN_ENOTFOUND when it has neither. */
hn_status tok_from_hf_dir(const char *dir, tok **out, hn_err *err);
void tok_free(tok *t);

tok_kind tok_get_kind(const tok *t);
int tok_vocab_size(const tok *t);
int tok_bos(const tok *t); /* -1 if none */
int tok_eos(const tok *t); /* -1 if none */
int tok_unk(const tok *t); /* -1 if none */
int tok_pad(const tok *t); /* -1 if none */
/* Whether the file asks for BOS to be added (tokenizer.ggml.add_bos_token,
 * tokenizer_config.json add_bos_token; default true) and a BOS exists. */
bool tok_default_add_bos(const tok *t);
/* Id of the piece with exactly these bytes (e.g. "<s>", "<0x0A>"), or -1. */
int tok_find(const tok *t, const char *piece, size_t len);
/* The raw piece text of id (e.g. "▁the", "<0x0A>", "<s>"), or "" if out of range. */
const char *tok_piece(const tok *t, int id);
/* Control and unknown tokens (<s>, </s>, <unk>): they decode to nothing. */
bool tok_is_special(const tok *t, int id);

/* Encodes text[0..len) and appends the ids to *ids (a malloc'd array grown as
 * needed; *n and *cap track it). add_bos prepends BOS when the tokenizer has one.
 * TOK_SPM: text like "<s>" is encoded as plain text, never as a control id.
 * TOK_BPE_BYTES: added/special-token text (e.g. "<|im_end|>") is matched first,
 * longest first, and gives its id (as HF tokenizers' encode). On error nothing
 * is appended (*n is unchanged). See docs/tokenizer.md. */
hn_status tok_encode(const tok *t, const char *text, size_t len, bool add_bos,
                     int32_t **ids, size_t *n, size_t *cap, hn_err *err);

/* As tok_encode, and also appends to *starts the byte offset in text at which
 * each token begins (BOS and a prepended "▁" get offset 0; a "▁" that replaced
 * a space starts at that space; byte tokens of one character all start at it).
 * *ids and *starts are grown together and share *cap: always pass both.
 * Used to build loss masks from character spans. */
hn_status tok_encode_spans(const tok *t, const char *text, size_t len, bool add_bos,
                           int32_t **ids, uint32_t **starts, size_t *n, size_t *cap,
                           hn_err *err);

/* The general form: parse_special chooses whether added/special-token text is
 * matched (true: HF default; false: plain text, as transformers'
 * split_special_tokens=True / llama.cpp parse_special=false). starts may be NULL
 * (no offsets). parse_special = true on a TOK_SPM tokenizer is HN_EUNSUPPORTED. */
hn_status tok_encode_ex(const tok *t, const char *text, size_t len, bool add_bos,
                        bool parse_special, int32_t **ids, uint32_t **starts, size_t *n,
                        size_t *cap, hn_err *err);

/* Appends the bytes of one token as it continues after token `prev` (prev = -1
 * at the start) to out: byte tokens become their byte, "▁" becomes a space, the
 * leading space of the first piece after BOS is dropped (as SentencePiece does),
 * control tokens produce nothing. Concatenating the pieces of a sequence gives
 * tok_decode's result, so streaming output is exact. */
void tok_decode_piece(const tok *t, int prev, int id, hn_buf *out);
/* Decodes a whole sequence (skipping control tokens). TOK_BPE_BYTES: pieces are
 * mapped back through the GPT-2 byte map to their exact bytes (a piece may end
 * inside a UTF-8 character; the bytes are emitted as they are); prev is unused. */
void tok_decode(const tok *t, const int32_t *ids, size_t n, hn_buf *out);
/* As tok_decode_piece / tok_decode; skip_special = false also writes control
 * and unknown tokens as their text (HF decode(skip_special_tokens=False)). */
void tok_decode_piece_ex(const tok *t, int prev, int id, bool skip_special, hn_buf *out);
void tok_decode_ex(const tok *t, const int32_t *ids, size_t n, bool skip_special, hn_buf *out);

/* --- describing a tokenizer to writers (export) --- */

/* Type of id as GGUF's tokenizer.ggml.token_type numbers it: 1 normal,
 * 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (0 if undefined or
 * out of range). */
int tok_token_type(const tok *t, int id);

#define TOK_MAX_SPLITS 4

/* How a TOK_BPE_BYTES tokenizer cuts text before merging (tokenizer.json terms). */
typedef struct tok_pretok {
    bool nfc;             /* normalizer NFC */
    int n_splits;         /* Split pre-tokenizers ("Isolated"), applied in order */
    const char *split[TOK_MAX_SPLITS]; /* their patterns (live as long as t) */
    bool split_literal[TOK_MAX_SPLITS]; /* pattern is a String, not a Regex */
    bool bl_regex;        /* ByteLevel use_regex (GPT-2's regex) */
    bool bl_prefix_space; /* ByteLevel add_prefix_space */
    bool ignore_merges;   /* BPE ignore_merges */
} tok_pretok;
void tok_get_pretok(const tok *t, tok_pretok *out);
/* llama.cpp's tokenizer.ggml.pre name for t's pre-tokenizer ("gpt-2",
 * "qwen2", "llama-bpe", "smollm"), or NULL when it is none of them (or t is
 * not byte-level BPE). */
const char *tok_pre_name(const tok *t);
/* The merges of a rank-merging tokenizer (byte-level BPE, or BPE from a
 * tokenizer.json) as "left right" strings in rank order; caller frees each
 * and the array. *n = 0 for a score-merging (GGUF "llama") tokenizer. */
hn_status tok_list_merges(const tok *t, char ***out, size_t *n, hn_err *err);

#endif
