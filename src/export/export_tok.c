/* export_tok.c — the tokenizer in exported files: tokenizer.ggml.* keys for
 * GGUF ("llama" for SPM tokenizers, "gpt2" + tokenizer.ggml.pre for byte-level
 * BPE), and a tokenizer.json: the Llama-2 "legacy" form for an SPM tokenizer
 * (merges derived from vocab + scores the way transformers'
 * SentencePieceExtractor does: every split of a piece into two vocabulary
 * pieces, ordered by the piece's score, highest first, ties in (piece id,
 * left id, right id) order), or the byte-level form (Split regexes +
 * ByteLevel, the merges in rank order) rebuilt from the loaded tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/template.h"
#include "export/export.h"
#include "tokenizer/tok_internal.h"

/* ---- GGUF ---- */

/* Scores for a tokenizer loaded from tokenizer.json (which has none): a piece
 * made by merge rank r scores -(r + 1), every other piece 0, so llama.cpp's
 * score-driven SPM merging follows the rank order. */
static float *hf_scores(const tok *t) {
    float *sc = calloc((size_t)t->n, sizeof *sc);
    if (!sc) return NULL;
    const tok_merge_map *mm = &t->merges;
    for (uint64_t i = 0; mm->keys && i <= mm->mask; i++) {
        if (!mm->keys[i]) continue;
        int32_t r = mm->result[i];
        float v = -(float)mm->rank[i] - 1.0f;
        if (r >= 0 && r < t->n && (sc[r] == 0.0f || v > sc[r])) sc[r] = v;
    }
    return sc;
}

static hn_status set_vocab(gguf_writer *w, const tok *t, hn_err *err) {
    const char **pieces = malloc((size_t)t->n * sizeof *pieces);
    int32_t *types = malloc((size_t)t->n * sizeof *types);
    float *sc = t->use_merges ? hf_scores(t) : NULL;
    hn_status s = HN_OK;
    if (!pieces || !types || (t->use_merges && !sc)) s = hn_errf(err, HN_ENOMEM, "out of memory");
    for (int i = 0; !s && i < t->n; i++) {
        pieces[i] = tok_piece(t, i);
        types[i] = t->type[i] ? t->type[i] : TOK_T_NORMAL;
    }
    if (!s) s = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, (uint64_t)t->n);
    if (!s) s = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", sc ? sc : t->score,
                                        (uint64_t)t->n);
    if (!s) s = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)t->n);
    if (s == HN_ENOMEM) hn_errf(err, HN_ENOMEM, "out of memory");
    free(pieces);
    free(types);
    free(sc);
    return s;
}

static void set_id(gguf_writer *w, const char *key, int id) {
    if (id >= 0) gguf_writer_set_u32(w, key, (uint32_t)id);
}

static hn_status gguf_spm(gguf_writer *w, const tok *t, hn_err *err) {
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    hn_status s = set_vocab(w, t, err);
    if (s) return s;
    set_id(w, "tokenizer.ggml.bos_token_id", t->bos);
    set_id(w, "tokenizer.ggml.eos_token_id", t->eos);
    set_id(w, "tokenizer.ggml.unknown_token_id", t->unk);
    set_id(w, "tokenizer.ggml.padding_token_id", t->pad);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
    return HN_OK;
}

/* Byte-level BPE: tokens (padded with unused "[PADn]" up to the model's
 * vocab_size, as convert_hf_to_gguf.py does, since llama.cpp sizes the
 * embedding by the token list), token types, merges in rank order. */
static hn_status bpe_vocab(gguf_writer *w, const tok *t, int n_vocab, hn_err *err) {
    int n = n_vocab > t->n ? n_vocab : t->n;
    const char **pieces = calloc((size_t)n, sizeof *pieces);
    int32_t *types = calloc((size_t)n, sizeof *types);
    char (*pad)[24] = n > t->n ? calloc((size_t)(n - t->n), sizeof *pad) : NULL;
    hn_status s = HN_OK;
    if (!pieces || !types || (n > t->n && !pad)) s = hn_errf(err, HN_ENOMEM, "out of memory");
    for (int i = 0; !s && i < n; i++) {
        if (i >= t->n) snprintf(pad[i - t->n], sizeof pad[0], "[PAD%d]", i);
        pieces[i] = i < t->n ? tok_piece(t, i) : pad[i - t->n];
        int ty = i < t->n ? tok_token_type(t, i) : TOK_T_UNUSED;
        types[i] = ty ? ty : TOK_T_NORMAL;
    }
    if (!s) s = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, (uint64_t)n);
    if (!s) s = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)n);
    free(pieces);
    free(types);
    free(pad);
    char **merges = NULL;
    size_t nm = 0;
    if (!s) s = tok_list_merges(t, &merges, &nm, err);
    if (!s) s = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, nm);
    for (size_t i = 0; i < nm; i++) free(merges[i]);
    free(merges);
    return s == HN_ENOMEM ? hn_errf(err, HN_ENOMEM, "out of memory") : s;
}

/* The end-of-turn token llama.cpp stops chat generation at, when the
 * vocabulary has one of the usual spellings as a control token. */
static int eot_id(const tok *t) {
    static const char *const names[] = {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"};
    for (int i = 0; i < 4; i++) {
        int id = tok_find(t, names[i], strlen(names[i]));
        if (id >= 0 && tok_token_type(t, id) == TOK_T_CONTROL) return id;
    }
    return -1;
}

static hn_status gguf_bpe(gguf_writer *w, const hn_model *m, hn_err *err) {
    const tok *t = m->tok;
    const char *pre = tok_pre_name(t);
    if (!pre)
        return hn_errf(err, HN_EUNSUPPORTED, "GGUF export: this byte-level tokenizer's "
                       "pre-tokenizer is none of those llama.cpp knows by name (gpt-2, qwen2, "
                       "llama-bpe, smollm; without add_prefix_space)");
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    hn_status s = bpe_vocab(w, t, m->cfg.vocab_size, err);
    if (s) return s;
    set_id(w, "tokenizer.ggml.bos_token_id", tok_bos(t));
    set_id(w, "tokenizer.ggml.eos_token_id", tok_eos(t));
    set_id(w, "tokenizer.ggml.eot_token_id", eot_id(t));
    set_id(w, "tokenizer.ggml.unknown_token_id", tok_unk(t));
    set_id(w, "tokenizer.ggml.padding_token_id", tok_pad(t));
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", tok_default_add_bos(t));
    return HN_OK;
}

hn_status export_gguf_tokenizer(gguf_writer *w, const hn_model *m, hn_err *err) {
    const tok *t = m->tok;
    hn_status s = tok_get_kind(t) == TOK_SPM ? gguf_spm(w, t, err) : gguf_bpe(w, m, err);
    if (s) return s;
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    if (m->chat_template) { /* with the fine-tune's template variables fixed inside */
        char *src = chat_template_bake_vars(m->chat_template, m->chat_template_vars);
        if (!src) return hn_errf(err, HN_ENOMEM, "out of memory");
        gguf_writer_set_str(w, "tokenizer.chat_template", src);
        free(src);
    } else { /* training used hone's default template: ship it, in Jinja */
        gguf_writer_set_str(w, "tokenizer.chat_template", chat_template_default_jinja());
        gguf_writer_set_str(w, "hone.chat_template", "hone-default");
    }
    return HN_OK;
}

/* ---- merges ---- */

typedef struct merge {
    int32_t l, r;
    float score;
    size_t order; /* position before the score sort (stable tie-break) */
} merge;

typedef struct merge_vec {
    merge *v;
    size_t n, cap;
} merge_vec;

static bool push(merge_vec *mv, int32_t l, int32_t r, float score) {
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 256;
        merge *nv = realloc(mv->v, cap * sizeof *nv);
        if (!nv) return false;
        mv->v = nv;
        mv->cap = cap;
    }
    mv->v[mv->n] = (merge){l, r, score, mv->n};
    mv->n++;
    return true;
}

/* All splits of piece id into two vocabulary pieces at UTF-8 boundaries,
 * in (left id, right id) order. */
static bool piece_splits(const tok *t, int id, merge_vec *mv) {
    const char *p = tok_piece(t, id);
    size_t len = strlen(p), first = mv->n;
    for (size_t k = 1; k < len; k++) {
        if (((unsigned char)p[k] & 0xC0) == 0x80) continue;
        int l = tok_lookup(t, p, k), r = tok_lookup(t, p + k, len - k);
        if (l >= 0 && r >= 0 && !push(mv, l, r, t->score[id])) return false;
    }
    for (size_t i = first + 1; i < mv->n; i++) /* insertion sort: few splits per piece */
        for (size_t j = i; j > first && (mv->v[j - 1].l > mv->v[j].l ||
                                          (mv->v[j - 1].l == mv->v[j].l && mv->v[j - 1].r > mv->v[j].r));
             j--) {
            merge tmp = mv->v[j];
            mv->v[j] = mv->v[j - 1];
            mv->v[j - 1] = tmp;
        }
    return true;
}

static int by_score_desc(const void *a, const void *b) {
    const merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

hn_status export_spm_merges(const tok *t, char ***out, size_t *n, hn_err *err) {
    *out = NULL;
    *n = 0;
    merge_vec mv = {0};
    for (int i = 0; i < t->n; i++)
        if (!piece_splits(t, i, &mv)) {
            free(mv.v);
            return hn_errf(err, HN_ENOMEM, "out of memory");
        }
    for (size_t i = 0; i < mv.n; i++) mv.v[i].order = i;
    if (mv.n) qsort(mv.v, mv.n, sizeof *mv.v, by_score_desc);
    char **s = calloc(mv.n ? mv.n : 1, sizeof *s);
    for (size_t i = 0; s && i < mv.n; i++) {
        const char *l = tok_piece(t, mv.v[i].l), *r = tok_piece(t, mv.v[i].r);
        size_t ll = strlen(l), rl = strlen(r);
        if (!(s[i] = malloc(ll + rl + 2))) {
            for (size_t j = 0; j < i; j++) free(s[j]);
            free(s);
            s = NULL;
            break;
        }
        memcpy(s[i], l, ll);
        s[i][ll] = ' ';
        memcpy(s[i] + ll + 1, r, rl + 1);
    }
    free(mv.v);
    if (!s) return hn_errf(err, HN_ENOMEM, "out of memory");
    *out = s;
    *n = mv.n;
    return HN_OK;
}

/* ---- tokenizer.json ---- */

static json_t *added_tokens(const tok *t) {
    json_t *a = json_array();
    for (int i = 0; i < t->n; i++) {
        if (t->type[i] != TOK_T_CONTROL && t->type[i] != TOK_T_UNKNOWN) continue;
        json_array_append_new(a, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", i,
                                           "content", tok_piece(t, i), "single_word", 0,
                                           "lstrip", 0, "rstrip", 0, "normalized", 0,
                                           "special", 1));
    }
    return a;
}

static json_t *normalizer(void) {
    return json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}", "type", "Sequence",
                     "normalizers", "type", "Prepend", "prepend", "\xe2\x96\x81", "type",
                     "Replace", "pattern", "String", " ", "content", "\xe2\x96\x81");
}

static json_t *post_processor(const tok *t) {
    if (!t->add_bos || t->bos < 0)
        return json_pack("{s:s, s:[{s:{s:s, s:i}}], s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:{}}",
                         "type", "TemplateProcessing", "single", "Sequence", "id", "A",
                         "type_id", 0, "pair", "Sequence", "id", "A", "type_id", 0, "Sequence",
                         "id", "B", "type_id", 1, "special_tokens");
    const char *b = tok_piece(t, t->bos);
    return json_pack(
        "{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}],"
        " s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}],"
        " s:{s:{s:s, s:[i], s:[s]}}}",
        "type", "TemplateProcessing", "single", "SpecialToken", "id", b, "type_id", 0,
        "Sequence", "id", "A", "type_id", 0, "pair", "SpecialToken", "id", b, "type_id", 0,
        "Sequence", "id", "A", "type_id", 0, "SpecialToken", "id", b, "type_id", 1, "Sequence",
        "id", "B", "type_id", 1, "special_tokens", b, "id", b, "ids", t->bos, "tokens", b);
}

static json_t *decoder(void) {
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}",
                     "type", "Sequence", "decoders", "type", "Replace", "pattern", "String",
                     "\xe2\x96\x81", "content", " ", "type", "ByteFallback", "type", "Fuse",
                     "type", "Strip", "content", " ", "start", 1, "stop", 0);
}

/* tokenizer.json's "vocab" (piece -> id) and "merges" (consumes merges). */
static void vocab_and_merges(const tok *t, char **merges, size_t nm, json_t **vocab, json_t **jm) {
    *vocab = json_object();
    *jm = json_array();
    for (int i = 0; i < t->n; i++) json_object_set_new(*vocab, tok_piece(t, i), json_integer(i));
    for (size_t i = 0; i < nm; i++) {
        json_array_append_new(*jm, json_string(merges[i]));
        free(merges[i]);
    }
    free(merges);
}

static hn_status bpe_model(const tok *t, json_t **out, hn_err *err) {
    char **merges;
    size_t nm;
    hn_status s = export_spm_merges(t, &merges, &nm, err);
    if (s) return s;
    json_t *vocab, *jm;
    vocab_and_merges(t, merges, nm, &vocab, &jm);
    *out = json_pack("{s:s, s:n, s:s?, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE",
                     "dropout", "unk_token", t->unk >= 0 ? tok_piece(t, t->unk) : NULL,
                     "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1,
                     "byte_fallback", 1, "ignore_merges", 0, "vocab", vocab, "merges", jm);
    return *out ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory building tokenizer.json");
}

/* ---- tokenizer.json, byte-level ---- */

/* Every control and user-defined token (byte-level added tokens). */
static json_t *bpe_added(const tok *t) {
    json_t *a = json_array();
    for (int i = 0; i < t->n; i++) {
        int ty = tok_token_type(t, i);
        if (ty != TOK_T_CONTROL && ty != TOK_T_USER) continue;
        json_array_append_new(a, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", i,
                                           "content", tok_piece(t, i), "single_word", 0,
                                           "lstrip", 0, "rstrip", 0, "normalized", 0,
                                           "special", ty == TOK_T_CONTROL));
    }
    return a;
}

static json_t *byte_level(const tok_pretok *p, bool trim) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space",
                     p->bl_prefix_space, "trim_offsets", trim, "use_regex", p->bl_regex);
}

static json_t *bpe_pre_tokenizer(const tok_pretok *p) {
    if (!p->n_splits) return byte_level(p, true);
    json_t *list = json_array();
    for (int i = 0; i < p->n_splits; i++)
        json_array_append_new(list, json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split",
                                              "pattern", p->split_literal[i] ? "String" : "Regex",
                                              p->split[i], "behavior", "Isolated", "invert", 0));
    json_array_append_new(list, byte_level(p, false));
    return json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", list);
}

static hn_status bpe_model_bytes(const tok *t, const tok_pretok *p, json_t **out, hn_err *err) {
    char **merges;
    size_t nm;
    hn_status s = tok_list_merges(t, &merges, &nm, err);
    if (s) return s;
    json_t *vocab, *jm;
    vocab_and_merges(t, merges, nm, &vocab, &jm);
    *out = json_pack("{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:o}", "type", "BPE",
                     "dropout", "unk_token", "continuing_subword_prefix", "",
                     "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0,
                     "ignore_merges", p->ignore_merges, "vocab", vocab, "merges", jm);
    return *out ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory building tokenizer.json");
}

/* Every piece goes into model.vocab (ids stay dense; an added token that is
 * also in the vocabulary is what GPT-2's own file does). */
static hn_status tokenizer_json_bytes(const tok *t, json_t **out, hn_err *err) {
    tok_pretok p;
    tok_get_pretok(t, &p);
    json_t *model;
    hn_status s = bpe_model_bytes(t, &p, &model, err);
    if (s) return s;
    json_t *post = tok_default_add_bos(t) ? post_processor(t) : byte_level(&p, false);
    json_t *norm = p.nfc ? json_pack("{s:s}", "type", "NFC") : json_null();
    json_t *dec = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1,
                            "trim_offsets", 1, "use_regex", 1);
    *out = json_pack("{s:s, s:n, s:n, s:o, s:o, s:o, s:o, s:o, s:o}", "version", "1.0",
                     "truncation", "padding", "added_tokens", bpe_added(t), "normalizer", norm,
                     "pre_tokenizer", bpe_pre_tokenizer(&p), "post_processor", post, "decoder",
                     dec, "model", model);
    return *out ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory building tokenizer.json");
}

hn_status export_tokenizer_json(const tok *t, json_t **out, hn_err *err) {
    *out = NULL;
    if (tok_get_kind(t) == TOK_BPE_BYTES) return tokenizer_json_bytes(t, out, err);
    json_t *model;
    hn_status s = bpe_model(t, &model, err);
    if (s) return s;
    *out = json_pack("{s:s, s:n, s:n, s:o, s:o, s:n, s:o, s:o, s:o}", "version", "1.0",
                     "truncation", "padding", "added_tokens", added_tokens(t), "normalizer",
                     normalizer(), "pre_tokenizer", "post_processor", post_processor(t),
                     "decoder", decoder(), "model", model);
    return *out ? HN_OK : hn_errf(err, HN_ENOMEM, "out of memory building tokenizer.json");
}
