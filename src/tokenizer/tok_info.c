/* tok_info.c — describing a loaded tokenizer to writers (src/export): token
 * types, the byte-level pre-tokenizer chain and its llama.cpp name, and the
 * merge list in rank order, so exporters never reach into struct tok. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

int tok_token_type(const tok *t, int id) {
    return id >= 0 && id < t->n ? t->type[id] : TOK_T_UNDEFINED;
}

void tok_get_pretok(const tok *t, tok_pretok *out) {
    memset(out, 0, sizeof *out);
    out->nfc = t->nfc;
    out->n_splits = t->n_re;
    for (int i = 0; i < t->n_re; i++) {
        out->split[i] = t->re_src[i];
        out->split_literal[i] = t->re_literal[i];
    }
    out->bl_regex = t->bl_re != NULL;
    out->bl_prefix_space = t->bl_prefix_space;
    out->ignore_merges = t->ignore_merges;
}

static bool split_is(const tok *t, int i, const char *re) {
    return !t->re_literal[i] && t->re_src[i] && strcmp(t->re_src[i], re) == 0;
}

/* The names are the pre-tokenizers hone's GGUF loader (and llama.cpp) maps to
 * exactly these regexes; anything else has no name to write. */
const char *tok_pre_name(const tok *t) {
    if (t->kind != TOK_BPE_BYTES || t->bl_prefix_space) return NULL;
    if (t->n_re == 0 && t->bl_re) return "gpt-2";
    if (t->n_re != 1) return NULL;
    if (!t->bl_re && split_is(t, 0, TOK_RE_QWEN2)) return "qwen2";
    if (!t->bl_re && split_is(t, 0, TOK_RE_LLAMA3)) return "llama-bpe";
    if (t->bl_re && split_is(t, 0, "\\p{N}")) return "smollm";
    return NULL;
}

typedef struct ranked {
    uint32_t rank;
    int32_t a, b;
} ranked;

static int by_rank(const void *x, const void *y) {
    const ranked *p = x, *q = y;
    return p->rank < q->rank ? -1 : p->rank > q->rank;
}

static char *join(const tok *t, int32_t a, int32_t b) {
    size_t la = t->len[a], lb = t->len[b];
    char *s = malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, t->text + t->off[a], la);
    s[la] = ' ';
    memcpy(s + la + 1, t->text + t->off[b], lb);
    s[la + lb + 1] = '\0';
    return s;
}

hn_status tok_list_merges(const tok *t, char ***out, size_t *n, hn_err *err) {
    *out = NULL;
    *n = 0;
    const tok_merge_map *m = &t->merges;
    size_t cnt = 0;
    for (uint64_t i = 0; m->keys && i <= m->mask; i++) cnt += m->keys[i] != 0;
    ranked *r = malloc((cnt ? cnt : 1) * sizeof *r);
    char **s = calloc(cnt ? cnt : 1, sizeof *s);
    if (!r || !s) {
        free(r);
        free(s);
        return hn_errf(err, HN_ENOMEM, "out of memory listing %zu merges", cnt);
    }
    size_t k = 0;
    for (uint64_t i = 0; m->keys && i <= m->mask; i++)
        if (m->keys[i]) {
            uint64_t key = m->keys[i] - 1;
            r[k++] = (ranked){m->rank[i], (int32_t)(key >> 32), (int32_t)(uint32_t)key};
        }
    qsort(r, cnt, sizeof *r, by_rank);
    for (k = 0; k < cnt; k++)
        if (!(s[k] = join(t, r[k].a, r[k].b))) break;
    free(r);
    if (k < cnt) {
        for (size_t j = 0; j < k; j++) free(s[j]);
        free(s);
        return hn_errf(err, HN_ENOMEM, "out of memory listing %zu merges", cnt);
    }
    *out = s;
    *n = cnt;
    return HN_OK;
}
