/* tok_vocab.c — GPT-2's original tokenizer files, vocab.json + merges.txt
 * (no tokenizer.json), and the directory entry that picks between the two
 * forms. The pair is turned into the tokenizer.json document Hugging Face's
 * GPT2TokenizerFast builds from it — BPE, ByteLevel pre-tokenizer with GPT-2's
 * regex, ByteLevel decoder, the special tokens of tokenizer_config.json (else
 * <|endoftext|>) as added tokens — and loaded by tok_hf_build, so both forms
 * behave identically. merges.txt is read as HF tokenizers reads it: an
 * optional "#version" first line, then one "left right" pair per line; errors
 * name the file and line. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/file.h"

static hn_status load_vocab(const char *path, json_t **out, hn_err *err) {
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*out) {
        if (json_error_code(&je) == json_error_cannot_open_file)
            return hn_errf(err, HN_EIO, "%s: cannot open: %s", path, je.text);
        return hn_errf(err, HN_EFORMAT, "%s:%d: not valid JSON: %s (column %d)", path, je.line,
                       je.text, je.column);
    }
    if (json_is_object(*out) && json_object_size(*out) > 0) return HN_OK;
    json_decref(*out);
    *out = NULL;
    return hn_errf(err, HN_EFORMAT, "%s:1: expected a non-empty JSON object of piece -> id",
                   path);
}

/* Checks that p[0..len) is a piece of vocab; names the line otherwise. */
static hn_status known(const json_t *vocab, const char *path, int line, const char *what,
                       const char *p, size_t len, hn_err *err) {
    if (json_object_getn(vocab, p, len)) return HN_OK;
    return hn_errf(err, HN_EFORMAT, "%s:%d: %s \"%.*s\" is not in vocab.json", path, line, what,
                   (int)(len > 100 ? 100 : len), p);
}

/* One line "left right" -> a merges entry (both parts and their join known). */
static hn_status merge_line(const json_t *vocab, const char *path, int line, const char *s,
                            size_t len, char *tmp, json_t *merges, hn_err *err) {
    const char *sp = memchr(s, ' ', len);
    if (!sp || sp == s || sp + 1 == s + len || memchr(sp + 1, ' ', (size_t)(s + len - sp - 1)) ||
        memchr(s, '\0', len))
        return hn_errf(err, HN_EFORMAT, "%s:%d: expected \"left right\", got \"%.*s\"", path,
                       line, (int)(len > 100 ? 100 : len), s);
    size_t al = (size_t)(sp - s), bl = len - al - 1;
    memcpy(tmp, s, al);
    memcpy(tmp + al, sp + 1, bl);
    hn_status st = known(vocab, path, line, "left part", s, al, err);
    if (!st) st = known(vocab, path, line, "right part", sp + 1, bl, err);
    if (!st) st = known(vocab, path, line, "merged piece", tmp, al + bl, err);
    if (st) return st;
    json_t *js = json_stringn(s, len);
    if (!js) return hn_errf(err, HN_EFORMAT, "%s:%d: not valid UTF-8", path, line);
    return json_array_append_new(merges, js) ? hn_errf(err, HN_ENOMEM, "%s: out of memory", path)
                                             : HN_OK;
}

static hn_status load_merges(const char *path, const json_t *vocab, json_t **out, hn_err *err) {
    char *data;
    size_t len;
    hn_status st = hn_file_read(path, 0, &data, &len, err);
    if (st) return st;
    json_t *merges = json_array();
    char *tmp = malloc(len + 1);
    if (!merges || !tmp) st = hn_errf(err, HN_ENOMEM, "%s: out of memory", path);
    int line = 0;
    for (size_t i = 0; !st && i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len, n = end - i;
        line++;
        if (n && data[i + n - 1] == '\r') n--; /* CRLF files */
        bool header = line == 1 && n >= 8 && memcmp(data + i, "#version", 8) == 0;
        if (n && !header) st = merge_line(vocab, path, line, data + i, n, tmp, merges, err);
        i = end + 1;
    }
    free(tmp);
    free(data);
    if (st) {
        json_decref(merges);
        return st;
    }
    *out = merges;
    return HN_OK;
}

/* ---- special tokens ---- */

static void add_special(json_t *added, const char *name, json_int_t id, bool special) {
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a)
        if (!strcmp(json_string_value(json_object_get(a, "content")), name)) return;
    json_array_append_new(added, json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id,
                                           "content", name, "single_word", 0, "lstrip", 0,
                                           "rstrip", 0, "normalized", 0, "special", special));
}

static void add_piece(json_t *added, const json_t *vocab, const char *name) {
    const json_t *id = json_object_get(vocab, name);
    if (json_is_integer(id)) add_special(added, name, json_integer_value(id), true);
}

/* A special-token field of tokenizer_config.json naming a vocab piece. */
static void add_named(json_t *added, const json_t *vocab, const json_t *v) {
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (json_is_string(v)) add_piece(added, vocab, json_string_value(v));
}

/* added_tokens: tokenizer_config.json's added_tokens_decoder ("id": {content,
 * special}), and its bos/eos/unk/pad/additional special tokens found in the
 * vocabulary; without a config, <|endoftext|> (GPT-2's only special token). */
static json_t *added_tokens(const json_t *cfg, const json_t *vocab) {
    json_t *added = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(cfg, "added_tokens_decoder"), key, v) {
        const json_t *content = json_object_get(v, "content");
        char *endp;
        long long id = strtoll(key, &endp, 10);
        if (json_is_string(content) && !*endp && endp != key)
            add_special(added, json_string_value(content), id,
                        json_is_true(json_object_get(v, "special")));
    }
    static const char *const fields[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (int i = 0; i < 4; i++) add_named(added, vocab, json_object_get(cfg, fields[i]));
    size_t i;
    json_array_foreach(json_object_get(cfg, "additional_special_tokens"), i, v)
        add_named(added, vocab, v);
    if (!cfg) add_piece(added, vocab, "<|endoftext|>");
    return added;
}

static json_t *read_config(const char *vocab_path) {
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s", vocab_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    if (!hn_path_join(path, sizeof path, dir, "tokenizer_config.json")) return NULL;
    json_t *cfg = json_load_file(path, 0, NULL); /* validated again by tok_hf_build */
    if (json_is_object(cfg)) return cfg;
    json_decref(cfg);
    return NULL;
}

/* The tokenizer.json GPT2TokenizerFast makes of the pair (vocab, merges stolen). */
static json_t *document(json_t *vocab, json_t *merges, const json_t *cfg) {
    bool prefix = json_is_true(json_object_get(cfg, "add_prefix_space"));
    return json_pack("{s:o, s:n, s:{s:s, s:b, s:b, s:b}, s:{s:s}, s:{s:s},"
                     " s:{s:s, s:n, s:n, s:b, s:b, s:o, s:o}}",
                     "added_tokens", added_tokens(cfg, vocab), "normalizer", "pre_tokenizer",
                     "type", "ByteLevel", "add_prefix_space", prefix, "trim_offsets", 1,
                     "use_regex", 1, "post_processor", "type", "ByteLevel", "decoder", "type",
                     "ByteLevel", "model", "type", "BPE", "dropout", "unk_token", "fuse_unk", 0,
                     "byte_fallback", 0, "vocab", vocab, "merges", merges);
}

hn_status tok_from_vocab_merges(const char *vocab_path, const char *merges_path, tok **out,
                                hn_err *err) {
    *out = NULL;
    json_t *vocab, *merges;
    hn_status st = load_vocab(vocab_path, &vocab, err);
    if (st) return st;
    st = load_merges(merges_path, vocab, &merges, err);
    if (st) {
        json_decref(vocab);
        return st;
    }
    json_t *cfg = read_config(vocab_path);
    json_t *doc = document(vocab, merges, cfg);
    bool defaults = !cfg;
    json_decref(cfg);
    if (!doc) return hn_errf(err, HN_ENOMEM, "%s: out of memory", vocab_path);
    st = tok_hf_build(vocab_path, doc, out, err);
    json_decref(doc);
    if (!st && defaults) { /* GPT2Tokenizer's own defaults for bos/eos */
        int id = tok_lookup(*out, "<|endoftext|>", 13);
        if ((*out)->bos < 0) (*out)->bos = id;
        if ((*out)->eos < 0) (*out)->eos = id;
    }
    return st;
}

hn_status tok_from_hf_dir(const char *dir, tok **out, hn_err *err) {
    *out = NULL;
    char tj[4096], vj[4096], mt[4096];
    if (!hn_path_join(tj, sizeof tj, dir, "tokenizer.json") ||
        !hn_path_join(vj, sizeof vj, dir, "vocab.json") ||
        !hn_path_join(mt, sizeof mt, dir, "merges.txt"))
        return hn_errf(err, HN_EINVAL, "%s: path too long", dir);
    if (hn_path_exists(tj)) return tok_from_hf_json(tj, out, err);
    if (hn_path_exists(vj) && hn_path_exists(mt)) return tok_from_vocab_merges(vj, mt, out, err);
    return hn_errf(err, HN_ENOTFOUND, "%s: no tokenizer.json (nor vocab.json + merges.txt) in the "
                   "model directory", dir);
}
