/* tok_internal.h — the tokenizer object shared by the tokenizer sources (not a
 * public header): vocabulary storage, the piece->id hash map, the merge-pair map
 * used by Hugging Face BPE files, the byte-level BPE state (pre-tokenizer
 * regexes, byte->piece ids, added tokens) and the builder helpers the two
 * loaders (tok_gguf.c, tok_hf.c) use to fill a tok. */
#ifndef HN_TOK_INTERNAL_H
#define HN_TOK_INTERNAL_H

#include <jansson.h>

#include "tokenizer/tok.h"

/* Token types, numbered as GGUF's tokenizer.ggml.token_type. */
enum {
    TOK_T_UNDEFINED = 0, TOK_T_NORMAL = 1, TOK_T_UNKNOWN = 2, TOK_T_CONTROL = 3,
    TOK_T_USER = 4, TOK_T_UNUSED = 5, TOK_T_BYTE = 6,
};

/* How the input is prefixed with "▁" before the spaces are replaced. */
typedef enum tok_prefix {
    TOK_PREFIX_NONE = 0,   /* nothing prepended */
    TOK_PREFIX_ALWAYS,     /* "▁" + text when text is non-empty (legacy / llama.cpp) */
    TOK_PREFIX_UNLESS_WS,  /* HF Metaspace: only if the text does not start with "▁" */
} tok_prefix;

/* Open-addressing hash map from piece bytes to id (slot holds id + 1, 0 = empty). */
typedef struct tok_map {
    uint32_t *slots;
    uint32_t mask;
} tok_map;

/* Open-addressing map (left id, right id) -> (rank, merged id) for HF merges. */
typedef struct tok_merge_map {
    uint64_t *keys; /* (left << 32 | right) + 1; 0 = empty */
    uint32_t *rank;
    int32_t *result;
    uint32_t mask;
} tok_merge_map;

/* Pre-tokenizer regexes (Hugging Face / llama.cpp spellings). */
#define TOK_RE_GPT2 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define TOK_RE_QWEN2                                                                      \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define TOK_RE_LLAMA3                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define TOK_MAX_RE TOK_MAX_SPLITS

/* Output of an encode call: ids (and optionally starts) appended to caller arrays. */
typedef struct tok_out {
    int32_t **ids;
    uint32_t **starts; /* NULL when spans are not wanted */
    size_t *n, *cap;
} tok_out;

struct tok {
    tok_kind kind;
    int n;               /* vocabulary size */
    char *text;          /* all pieces, each NUL-terminated */
    uint32_t *off, *len; /* piece i is text[off[i] .. off[i] + len[i]) */
    float *score;
    uint8_t *type;       /* TOK_T_* */
    uint8_t *byte_val;   /* for TOK_T_BYTE tokens: the byte */
    uint8_t *in_model;   /* HF: 1 if the id is in model.vocab (BPE may produce it) */
    int bos, eos, unk, pad;
    bool add_bos;        /* the file's default for adding BOS */
    tok_prefix prefix;
    bool use_merges;     /* HF BPE: merge by rank; else llama.cpp: merge by score */
    bool nfc;            /* NFC-normalise text before pre-tokenizing (TOK_BPE_BYTES) */
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_id[256]; /* id of "<0xXX>" or -1 */
    tok_map map;
    tok_merge_map merges;
    /* TOK_BPE_BYTES only */
    void *re[TOK_MAX_RE]; /* pcre2_code *: Split pre-tokenizers, applied in order */
    char *re_src[TOK_MAX_RE]; /* their patterns (for exporters) */
    bool re_literal[TOK_MAX_RE];
    int n_re;
    void *bl_re;          /* pcre2_code *: ByteLevel's own GPT-2 regex (use_regex), or NULL */
    bool bl_prefix_space; /* ByteLevel add_prefix_space */
    int32_t bb_id[256];   /* id of the piece spelling byte b through the GPT-2 map */
    int32_t *added;       /* ids matched in text when parsing specials, longest first */
    int n_added;
};

/* tok_hf.c: builds a tok from a parsed tokenizer.json document (borrowed);
 * path names the file in errors and locates the sibling tokenizer_config.json
 * and special_tokens_map.json. */
hn_status tok_hf_build(const char *path, const json_t *root, tok **out, hn_err *err);

/* Allocates a tok with room for n pieces totalling text_bytes bytes (without
 * NULs); fields are zeroed, ids -1. */
hn_status tok_alloc(int n, size_t text_bytes, tok **out, hn_err *err);
/* Copies piece i's bytes into the text arena; pieces must be set in id order. */
void tok_set_piece(tok *t, int i, const char *p, size_t len, size_t *cursor);
/* Builds the piece->id map (later duplicates win, as in llama.cpp's map) and
 * byte_id[]; on a duplicate piece, *dup gets the first duplicated id or -1. */
hn_status tok_index(tok *t, int *dup, hn_err *err);
/* Id of the piece p[0..len) or -1. */
int tok_lookup(const tok *t, const char *p, size_t len);
/* Parses "<0xXX>" (upper- or lower-case hex); returns the byte or -1. */
int tok_parse_byte_piece(const char *p, size_t len);

/* Appends one id (and its start offset); false when out of memory. */
bool tok_out_push(tok_out *o, int32_t id, uint32_t start);

/* Byte-level BPE (tok_bpe.c). Compiles pattern[0..len) (UTF + UCP, literal if
 * asked) into t->re[] (bl = false) or t->bl_re (bl = true). */
hn_status tok_bpe_add_regex(tok *t, const char *pattern, size_t len, bool literal, bool bl,
                            hn_err *err);
/* After the vocabulary, types and index are set: fills bb_id[] (every byte
 * must have its piece) and the added-token list (control + user tokens). */
hn_status tok_bpe_finish(tok *t, hn_err *err);
void tok_bpe_free(tok *t);
hn_status tok_bpe_encode(const tok *t, const char *text, size_t len, bool parse_special,
                         tok_out *o, hn_err *err);
void tok_bpe_decode_piece(const tok *t, int id, bool skip_special, hn_buf *out);

/* tok_nfc.c: NFC of text[0..len). *out = NULL when text is already NFC;
 * else *out (out_len bytes) and *map (out_len + 1 entries: for each output
 * byte the offset in text it comes from; map[out_len] = len), both malloc'd. */
hn_status tok_nfc(const char *text, size_t len, char **out, size_t *out_len, uint32_t **map,
                  hn_err *err);

hn_status tok_merge_map_init(tok_merge_map *m, size_t n, hn_err *err);
void tok_merge_map_put(tok_merge_map *m, int32_t a, int32_t b, uint32_t rank, int32_t res);
/* Returns true and fills rank/result if (a, b) is a merge. */
bool tok_merge_map_get(const tok_merge_map *m, int32_t a, int32_t b, uint32_t *rank,
                       int32_t *res);

#endif
