/* tok_hf.c — loads a Hugging Face tokenizer.json with a BPE model (vocab,
 * merges, byte_fallback) into a tok: the SentencePiece kind (Llama-2 "legacy"
 * form: normalizer Sequence[Prepend "▁", Replace " "->"▁"], or the newer
 * Metaspace pre-tokenizer form) or the byte-level kind (pre_tokenizer ByteLevel,
 * or Sequence of Split/Digits pre-tokenizers ending in ByteLevel; GPT-2, Llama 3,
 * Qwen, SmolLM). The file is hostile: every field is type-checked,
 * ids must be dense and unique, merges must name known pieces; errors name the
 * file and the field. BOS/EOS/PAD come from a sibling tokenizer_config.json or
 * special_tokens_map.json, else from added tokens "<s>" / "</s>". */
#include "tokenizer/tok_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"

#define SPACE_SYM "\xE2\x96\x81"

typedef struct hf_ctx {
    const char *path;
    json_t *vocab, *added;
    size_t n_vocab, n_added_new;
    hn_err *err;
} hf_ctx;

static hn_status load_json(const char *path, json_t **out, hn_err *err) {
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (*out) return HN_OK;
    if (json_error_code(&je) == json_error_cannot_open_file)
        return hn_errf(err, HN_EIO, "%s: cannot open: %s", path, je.text);
    return hn_errf(err, HN_EFORMAT, "%s: not valid JSON: %s (line %d, column %d)", path,
                   je.text, je.line, je.column);
}

static bool str_is(const json_t *j, const char *s) {
    return json_is_string(j) && strcmp(json_string_value(j), s) == 0;
}

/* ---- model kind and normalisation ---- */

static bool has_byte_level(const json_t *pt) {
    if (!json_is_object(pt)) return false;
    if (str_is(json_object_get(pt, "type"), "ByteLevel")) return true;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(pt, "pretokenizers"), i, v)
        if (has_byte_level(v)) return true;
    return false;
}

static hn_status check_model(hf_ctx *c, const json_t *root, const json_t *model) {
    const json_t *type = json_object_get(model, "type");
    if (type && !str_is(type, "BPE"))
        return hn_errf(c->err, HN_EUNSUPPORTED, "%s: model.type %s is not supported (only BPE)",
                       c->path, json_is_string(type) ? json_string_value(type) : "(not a string)");
    if (has_byte_level(json_object_get(root, "pre_tokenizer")) &&
        json_is_true(json_object_get(model, "byte_fallback")))
        return hn_errf(c->err, HN_EUNSUPPORTED, "%s: model.byte_fallback with a ByteLevel "
                       "pre_tokenizer is not supported", c->path);
    const json_t *d = json_object_get(model, "dropout");
    if (json_is_number(d) && json_number_value(d) != 0)
        return hn_errf(c->err, HN_EUNSUPPORTED, "%s: model.dropout is not supported", c->path);
    const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const json_t *a = json_object_get(model, affix[i]);
        if (json_is_string(a) && json_string_length(a))
            return hn_errf(c->err, HN_EUNSUPPORTED, "%s: model.%s is not supported", c->path,
                           affix[i]);
    }
    return HN_OK;
}

/* One normalizer of the legacy Sequence: Prepend "▁" or Replace " " -> "▁". */
static bool legacy_step(const json_t *n, bool *prepend) {
    if (str_is(json_object_get(n, "type"), "Prepend"))
        return str_is(json_object_get(n, "prepend"), SPACE_SYM) && (*prepend = true);
    if (!str_is(json_object_get(n, "type"), "Replace")) return false;
    const json_t *pat = json_object_get(n, "pattern");
    return str_is(json_object_get(pat, "String"), " ") &&
           str_is(json_object_get(n, "content"), SPACE_SYM);
}

static bool legacy_normalizer(const json_t *n, tok_prefix *prefix) {
    const json_t *list = json_object_get(n, "normalizers");
    if (!str_is(json_object_get(n, "type"), "Sequence") || !json_is_array(list)) return false;
    bool prepend = false, ok = json_array_size(list) > 0;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) ok = ok && legacy_step(v, &prepend);
    *prefix = prepend ? TOK_PREFIX_ALWAYS : TOK_PREFIX_NONE;
    return ok;
}

static bool metaspace(const json_t *pt, tok_prefix *prefix) {
    if (!str_is(json_object_get(pt, "type"), "Metaspace")) return false;
    const json_t *rep = json_object_get(pt, "replacement"), *split = json_object_get(pt, "split");
    if (!str_is(rep, SPACE_SYM) || json_is_true(split)) return false;
    const json_t *scheme = json_object_get(pt, "prepend_scheme");
    if (str_is(scheme, "never")) *prefix = TOK_PREFIX_NONE;
    else if (str_is(scheme, "always") || str_is(scheme, "first")) *prefix = TOK_PREFIX_UNLESS_WS;
    else if (!scheme) {
        *prefix = json_is_false(json_object_get(pt, "add_prefix_space")) ? TOK_PREFIX_NONE
                                                                         : TOK_PREFIX_UNLESS_WS;
    } else return false;
    return true;
}

static hn_status read_normalisation(hf_ctx *c, const json_t *root, tok_prefix *prefix) {
    const json_t *norm = json_object_get(root, "normalizer");
    const json_t *pt = json_object_get(root, "pre_tokenizer");
    bool norm_null = !norm || json_is_null(norm), pt_null = !pt || json_is_null(pt);
    if (pt_null && !norm_null && legacy_normalizer(norm, prefix)) return HN_OK;
    if (norm_null && !pt_null && metaspace(pt, prefix)) return HN_OK;
    return hn_errf(c->err, HN_EUNSUPPORTED,
                   "%s: normalizer/pre_tokenizer not supported: expected normalizer "
                   "Sequence[Prepend \"\xE2\x96\x81\", Replace \" \"] or pre_tokenizer Metaspace "
                   "(split false)", c->path);
}

/* ---- byte-level pre-tokenizers ---- */

static const char *type_of(const json_t *j) {
    const char *s = json_string_value(json_object_get(j, "type"));
    return s ? s : "(no type)";
}

static hn_status add_re(hf_ctx *c, tok *t, const char *pat, size_t len, bool literal, bool bl,
                        const char *field) {
    hn_status st = tok_bpe_add_regex(t, pat, len, literal, bl, c->err);
    return st ? hn_err_prefix(c->err, "%s: %s", c->path, field) : HN_OK;
}

/* Split {pattern: {Regex|String}, behavior: "Isolated", invert: false}. */
static hn_status split_item(hf_ctx *c, tok *t, const json_t *p, const char *field) {
    const json_t *pat = json_object_get(p, "pattern");
    const json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
    if (!json_is_string(re) && !json_is_string(str))
        return hn_errf(c->err, HN_EFORMAT, "%s: %s.pattern: expected {\"Regex\": ...} or "
                       "{\"String\": ...}", c->path, field);
    if (!str_is(json_object_get(p, "behavior"), "Isolated") || json_is_true(json_object_get(p, "invert")))
        return hn_errf(c->err, HN_EUNSUPPORTED, "%s: %s: only behavior \"Isolated\" without "
                       "invert is supported", c->path, field);
    const json_t *s = re ? re : str;
    return add_re(c, t, json_string_value(s), json_string_length(s), !re, false, field);
}

static hn_status bl_item(hf_ctx *c, tok *t, const json_t *p, const char *field) {
    const json_t *aps = json_object_get(p, "add_prefix_space"), *ur = json_object_get(p, "use_regex");
    t->bl_prefix_space = !aps || json_is_true(aps); /* HF's defaults: true, true */
    if (ur && !json_is_boolean(ur))
        return hn_errf(c->err, HN_EFORMAT, "%s: %s.use_regex is not a boolean", c->path, field);
    if (ur && json_is_false(ur)) return HN_OK;
    return add_re(c, t, TOK_RE_GPT2, strlen(TOK_RE_GPT2), false, true, field);
}

static hn_status seq_item(hf_ctx *c, tok *t, const json_t *p, bool last, const char *field) {
    const char *ty = type_of(p);
    if (strcmp(ty, "ByteLevel") == 0 && last) return bl_item(c, t, p, field);
    if (strcmp(ty, "Split") == 0 && !last) return split_item(c, t, p, field);
    if (strcmp(ty, "Digits") == 0 && !last) {
        const char *re = json_is_true(json_object_get(p, "individual_digits")) ? "\\p{N}" : "\\p{N}+";
        return add_re(c, t, re, strlen(re), false, false, field);
    }
    return hn_errf(c->err, HN_EUNSUPPORTED, "%s: %s: type %.64s is not supported here (byte-level "
                   "BPE takes Split/Digits pre-tokenizers followed by one ByteLevel)", c->path,
                   field, ty);
}

static hn_status read_pre_bytes(hf_ctx *c, const json_t *pt, tok *t) {
    if (str_is(json_object_get(pt, "type"), "ByteLevel")) return bl_item(c, t, pt, "pre_tokenizer");
    const json_t *list = json_object_get(pt, "pretokenizers");
    if (!str_is(json_object_get(pt, "type"), "Sequence") || !json_is_array(list))
        return hn_errf(c->err, HN_EUNSUPPORTED, "%s: pre_tokenizer: type %.64s is not supported "
                       "with ByteLevel", c->path, type_of(pt));
    size_t i, n = json_array_size(list);
    json_t *p;
    json_array_foreach(list, i, p) {
        char field[64];
        snprintf(field, sizeof field, "pre_tokenizer.pretokenizers[%zu]", i);
        hn_status st = seq_item(c, t, p, i + 1 == n, field);
        if (st) return st;
    }
    return HN_OK;
}

/* NFC, or a Sequence of NFC normalizers (nested or empty sequences too). */
static bool nfc_only(const json_t *n, bool *nfc) {
    if (str_is(json_object_get(n, "type"), "NFC")) return (*nfc = true);
    const json_t *list = json_object_get(n, "normalizers");
    if (!str_is(json_object_get(n, "type"), "Sequence") || !json_is_array(list)) return false;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (!nfc_only(v, nfc)) return false;
    return true;
}

/* The normalizer (none or NFC, applied per segment), the decoder (none or
 * ByteLevel) and the pre-tokenizer chain. */
static hn_status read_byte_level(hf_ctx *c, const json_t *root, tok *t) {
    const json_t *norm = json_object_get(root, "normalizer"), *dec = json_object_get(root, "decoder");
    if (norm && !json_is_null(norm) && !nfc_only(norm, &t->nfc))
        return hn_errf(c->err, HN_EUNSUPPORTED, "%s: normalizer: type %.64s is not supported with "
                       "byte-level BPE (only none, NFC or a Sequence of NFC)", c->path,
                       type_of(norm));
    if (dec && !json_is_null(dec) && !str_is(json_object_get(dec, "type"), "ByteLevel"))
        return hn_errf(c->err, HN_EUNSUPPORTED, "%s: decoder: type %.64s is not supported with "
                       "byte-level BPE (only ByteLevel)", c->path, type_of(dec));
    return read_pre_bytes(c, json_object_get(root, "pre_tokenizer"), t);
}

/* Id of the special token a TemplateProcessing post-processor puts first in
 * "single" (Llama 3's <|begin_of_text|>), or -1. */
static int template_bos(const json_t *pp, const tok *t) {
    if (str_is(json_object_get(pp, "type"), "Sequence")) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(pp, "processors"), i, p) {
            int id = template_bos(p, t);
            if (id >= 0) return id;
        }
        return -1;
    }
    if (!str_is(json_object_get(pp, "type"), "TemplateProcessing")) return -1;
    const json_t *first = json_array_get(json_object_get(pp, "single"), 0);
    const json_t *id = json_object_get(json_object_get(first, "SpecialToken"), "id");
    return json_is_string(id) ? tok_lookup(t, json_string_value(id), json_string_length(id)) : -1;
}

/* ---- vocabulary ---- */

/* Validates added_tokens and counts those that are not in model.vocab. */
static hn_status scan_added(hf_ctx *c) {
    if (!c->added || json_is_null(c->added)) return HN_OK;
    if (!json_is_array(c->added))
        return hn_errf(c->err, HN_EFORMAT, "%s: added_tokens is not an array", c->path);
    size_t i;
    json_t *a;
    json_array_foreach(c->added, i, a) {
        const json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(id) || !json_is_string(content))
            return hn_errf(c->err, HN_EFORMAT, "%s: added_tokens[%zu]: needs integer id and "
                           "string content", c->path, i);
        const json_t *v = json_object_getn(c->vocab, json_string_value(content),
                                           json_string_length(content));
        if (!v) c->n_added_new++;
        else if (!json_is_integer(v) || json_integer_value(v) != json_integer_value(id))
            return hn_errf(c->err, HN_EFORMAT, "%s: added_tokens[%zu] \"%s\": id %lld differs "
                           "from model.vocab's", c->path, i, json_string_value(content),
                           (long long)json_integer_value(id));
    }
    return HN_OK;
}

typedef struct piece_ref {
    const char *p;
    size_t len;
} piece_ref;

static hn_status place(hf_ctx *c, piece_ref *refs, size_t n, json_int_t id, const char *p,
                       size_t len, const char *field) {
    if (id < 0 || (size_t)id >= n)
        return hn_errf(c->err, HN_EFORMAT, "%s: %s \"%.100s\": id %lld out of range [0, %zu)",
                       c->path, field, p, (long long)id, n);
    if (refs[id].p)
        return hn_errf(c->err, HN_EFORMAT, "%s: %s \"%.100s\": id %lld duplicated (also \"%.100s\")",
                       c->path, field, p, (long long)id, refs[id].p);
    refs[id] = (piece_ref){p, len};
    return HN_OK;
}

/* Fills refs[0..n) from model.vocab and the new added tokens. */
static hn_status collect_pieces(hf_ctx *c, piece_ref *refs, size_t n, size_t *bytes) {
    const char *key;
    size_t klen, i;
    json_t *v;
    json_object_keylen_foreach(c->vocab, key, klen, v) {
        if (!json_is_integer(v))
            return hn_errf(c->err, HN_EFORMAT, "%s: model.vocab[\"%.100s\"]: id is not an integer",
                           c->path, key);
        hn_status st = place(c, refs, c->n_vocab, json_integer_value(v), key, klen, "model.vocab");
        if (st) return st;
        *bytes += klen;
    }
    json_array_foreach(c->added, i, v) {
        const json_t *content = json_object_get(v, "content");
        const char *p = json_string_value(content);
        size_t len = json_string_length(content);
        if (json_object_getn(c->vocab, p, len)) continue;
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        hn_status st = place(c, refs, n, id, p, len, "added_tokens");
        if (st) return st;
        *bytes += len;
    }
    return HN_OK;
}

static void set_types(hf_ctx *c, tok *t) {
    for (int i = 0; i < t->n; i++) {
        t->in_model[i] = (size_t)i < c->n_vocab;
        int b = tok_parse_byte_piece(t->text + t->off[i], t->len[i]);
        t->type[i] = b >= 0 && t->in_model[i] ? TOK_T_BYTE : TOK_T_NORMAL;
        t->byte_val[i] = (uint8_t)(b >= 0 ? b : 0);
    }
    size_t i;
    json_t *a;
    json_array_foreach(c->added, i, a) {
        int id = (int)json_integer_value(json_object_get(a, "id"));
        t->type[id] = json_is_true(json_object_get(a, "special")) ? TOK_T_CONTROL : TOK_T_USER;
    }
}

static hn_status build_vocab(hf_ctx *c, tok **out) {
    c->n_vocab = json_object_size(c->vocab);
    if (c->n_vocab == 0 || c->n_vocab > (1u << 28))
        return hn_errf(c->err, HN_EFORMAT, "%s: model.vocab has %zu entries", c->path, c->n_vocab);
    hn_status st = scan_added(c);
    if (st) return st;
    size_t n = c->n_vocab + c->n_added_new, bytes = 0;
    piece_ref *refs = calloc(n, sizeof *refs);
    if (!refs) return hn_errf(c->err, HN_ENOMEM, "%s: out of memory", c->path);
    st = collect_pieces(c, refs, n, &bytes);
    if (!st) st = tok_alloc((int)n, bytes, out, c->err);
    if (!st) {
        size_t cursor = 0;
        for (size_t i = 0; i < n; i++) tok_set_piece(*out, (int)i, refs[i].p, refs[i].len, &cursor);
        set_types(c, *out);
    }
    free(refs);
    return st;
}

/* ---- merges ---- */

static hn_status merge_parts(hf_ctx *c, const json_t *m, size_t i, const char **a, size_t *alen,
                             const char **b, size_t *blen) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ') || json_string_length(m) != strlen(s))
            return hn_errf(c->err, HN_EFORMAT, "%s: model.merges[%zu] \"%.100s\": expected "
                           "\"left right\"", c->path, i, s);
        *a = s, *alen = (size_t)(sp - s), *b = sp + 1, *blen = strlen(sp + 1);
        return HN_OK;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0)), *alen = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1)), *blen = json_string_length(json_array_get(m, 1));
        return HN_OK;
    }
    return hn_errf(c->err, HN_EFORMAT, "%s: model.merges[%zu]: expected a string or a pair of "
                   "strings", c->path, i);
}

static int model_piece(const tok *t, const char *p, size_t len) {
    int id = tok_lookup(t, p, len);
    return id >= 0 && t->in_model[id] ? id : -1;
}

static hn_status add_merge(hf_ctx *c, tok *t, const json_t *m, size_t i, char *tmp) {
    const char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    hn_status st = merge_parts(c, m, i, &a, &alen, &b, &blen);
    if (st) return st;
    int ia = model_piece(t, a, alen), ib = model_piece(t, b, blen);
    if (ia < 0 || ib < 0)
        return hn_errf(c->err, HN_EFORMAT, "%s: model.merges[%zu]: \"%.*s\" is not in model.vocab",
                       c->path, i, (int)(ia < 0 ? alen : blen), ia < 0 ? a : b);
    memcpy(tmp, a, alen);
    memcpy(tmp + alen, b, blen);
    int r = model_piece(t, tmp, alen + blen);
    if (r < 0)
        return hn_errf(c->err, HN_EFORMAT, "%s: model.merges[%zu]: merged piece \"%.*s\" is not "
                       "in model.vocab", c->path, i, (int)(alen + blen), tmp);
    tok_merge_map_put(&t->merges, ia, ib, (uint32_t)i, r);
    return HN_OK;
}

static hn_status read_merges(hf_ctx *c, const json_t *model, tok *t) {
    const json_t *merges = json_object_get(model, "merges");
    if (merges && !json_is_array(merges)) /* absent: no merges */
        return hn_errf(c->err, HN_EFORMAT, "%s: model.merges is not an array", c->path);
    size_t maxlen = 0;
    for (int i = 0; i < t->n; i++) maxlen = t->len[i] > maxlen ? t->len[i] : maxlen;
    hn_status st = tok_merge_map_init(&t->merges, json_array_size(merges), c->err);
    char *tmp = st ? NULL : malloc(2 * maxlen + 1);
    if (!st && !tmp) st = hn_errf(c->err, HN_ENOMEM, "%s: out of memory", c->path);
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        if (st) break;
        st = add_merge(c, t, m, i, tmp);
    }
    free(tmp);
    return st;
}

/* ---- special tokens ---- */

/* A special-token field: "<s>", {"content": "<s>", ...} or null/absent. */
static const char *special_name(const json_t *v) {
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static hn_status set_special(const char *file, const json_t *cfg, const char *field, const tok *t,
                             int *slot, hn_err *err) {
    const char *name = special_name(json_object_get(cfg, field));
    if (*slot >= 0 || !name) return HN_OK;
    int id = tok_lookup(t, name, strlen(name));
    if (id < 0)
        return hn_errf(err, HN_EFORMAT, "%s: %s \"%.100s\" is not in the vocabulary", file, field,
                       name);
    *slot = id;
    return HN_OK;
}

/* Reads bos/eos/pad (and add_bos_token) from a sibling file if it exists. */
static hn_status read_sibling(const char *path, const char *name, tok *t, bool *add_bos_set,
                              hn_err *err) {
    char dir[4096], file[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    if (!hn_path_join(file, sizeof file, dir, name) || !hn_path_exists(file)) return HN_OK;
    json_t *cfg;
    hn_status st = load_json(file, &cfg, err);
    if (st) return st;
    if (!json_is_object(cfg)) st = hn_errf(err, HN_EFORMAT, "%s: not a JSON object", file);
    if (!st) st = set_special(file, cfg, "bos_token", t, &t->bos, err);
    if (!st) st = set_special(file, cfg, "eos_token", t, &t->eos, err);
    if (!st) st = set_special(file, cfg, "pad_token", t, &t->pad, err);
    const json_t *ab = json_object_get(cfg, "add_bos_token");
    if (!st && json_is_boolean(ab) && !*add_bos_set) {
        t->add_bos = json_is_true(ab);
        *add_bos_set = true;
    }
    json_decref(cfg);
    return st;
}

static hn_status read_specials(const char *path, tok *t, bool add_bos_default, hn_err *err) {
    bool add_bos_set = false;
    t->add_bos = add_bos_default;
    hn_status st = read_sibling(path, "tokenizer_config.json", t, &add_bos_set, err);
    if (!st) st = read_sibling(path, "special_tokens_map.json", t, &add_bos_set, err);
    if (st) return st;
    int s = tok_lookup(t, "<s>", 3), e = tok_lookup(t, "</s>", 4);
    if (t->bos < 0 && s >= 0 && t->type[s] == TOK_T_CONTROL) t->bos = s;
    if (t->eos < 0 && e >= 0 && t->type[e] == TOK_T_CONTROL) t->eos = e;
    return HN_OK;
}

/* ---- assembly ---- */

static hn_status read_model_flags(hf_ctx *c, const json_t *model, tok *t) {
    t->kind = TOK_SPM;
    t->use_merges = true;
    t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    const json_t *unk = json_object_get(model, "unk_token");
    if (!unk || json_is_null(unk)) return HN_OK;
    if (!json_is_string(unk))
        return hn_errf(c->err, HN_EFORMAT, "%s: model.unk_token is not a string", c->path);
    t->unk = model_piece(t, json_string_value(unk), json_string_length(unk));
    if (t->unk < 0)
        return hn_errf(c->err, HN_EFORMAT, "%s: model.unk_token \"%.100s\" is not in model.vocab",
                       c->path, json_string_value(unk));
    t->type[t->unk] = TOK_T_UNKNOWN;
    return HN_OK;
}

/* Byte-level: types (no <0xXX> byte tokens), regexes, merges, byte pieces,
 * specials (add BOS only when a TemplateProcessing post-processor does). */
static hn_status finish_bytes(hf_ctx *c, const json_t *root, const json_t *model, tok *t) {
    t->kind = TOK_BPE_BYTES;
    for (int i = 0; i < t->n; i++)
        if (t->type[i] == TOK_T_BYTE) t->type[i] = TOK_T_NORMAL;
    hn_status st = read_byte_level(c, root, t);
    if (!st) st = read_merges(c, model, t);
    if (!st && tok_bpe_finish(t, c->err)) st = hn_err_prefix(c->err, "%s: model.vocab", c->path);
    int tb = st ? -1 : template_bos(json_object_get(root, "post_processor"), t);
    if (!st) st = read_specials(c->path, t, tb >= 0, c->err);
    if (!st && t->bos < 0 && tb >= 0) t->bos = tb;
    return st;
}

static hn_status build(hf_ctx *c, const json_t *root, tok **out) {
    if (!json_is_object(root))
        return hn_errf(c->err, HN_EFORMAT, "%s: top level is not a JSON object", c->path);
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model))
        return hn_errf(c->err, HN_EFORMAT, "%s: missing \"model\" object", c->path);
    c->vocab = json_object_get(model, "vocab");
    c->added = json_object_get(root, "added_tokens");
    if (!json_is_object(c->vocab))
        return hn_errf(c->err, HN_EFORMAT, "%s: missing model.vocab object", c->path);
    hn_status st = check_model(c, root, model);
    if (st) return st;
    bool bytes = has_byte_level(json_object_get(root, "pre_tokenizer"));
    tok_prefix prefix = TOK_PREFIX_NONE;
    if (!bytes) st = read_normalisation(c, root, &prefix);
    if (!st) st = build_vocab(c, out);
    if (st) return st;
    (*out)->prefix = prefix;
    int dup;
    st = tok_index(*out, &dup, c->err);
    if (!st && dup >= 0)
        st = hn_errf(c->err, HN_EFORMAT, "%s: added_tokens: piece \"%.100s\" appears twice", c->path,
                     tok_piece(*out, dup));
    if (!st) st = read_model_flags(c, model, *out);
    if (!st && bytes) return finish_bytes(c, root, model, *out);
    if (!st) st = read_merges(c, model, *out);
    if (!st) st = read_specials(c->path, *out, true, c->err);
    return st;
}

hn_status tok_hf_build(const char *path, const json_t *root, tok **out, hn_err *err) {
    *out = NULL;
    hf_ctx c = {.path = path, .err = err};
    hn_status st = build(&c, root, out);
    if (st) {
        tok_free(*out);
        *out = NULL;
    }
    return st;
}

hn_status tok_from_hf_json(const char *path, tok **out, hn_err *err) {
    *out = NULL;
    json_t *root;
    hn_status st = load_json(path, &root, err);
    if (st) return st;
    st = tok_hf_build(path, root, out, err);
    json_decref(root);
    return st;
}
