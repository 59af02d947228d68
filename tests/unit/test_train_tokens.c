/* test_train_tokens.c — choosing the token rows a LoRA fine-tune trains:
 * stories260K's EOS looks untrained (twin output rows) so "auto" picks it;
 * "none", "eot" and lists of eot/ids/pieces; unknown tokens refused with a
 * clear message; a healthy row is left alone and a row shrunk far below the
 * median norm counts as untrained. */
#include <string.h>

#include "train/tokens.h"
#include "test.h"

int main(void) {
    hn_model *m;
    hn_err err = {0};
    if (model_load(test_shared("models/stories260K/stories260K.gguf"), &m, &err) != HN_OK) {
        CHECK(0, "%s", err.msg);
        return test_finish("test_train_tokens");
    }
    int eos = tok_eos(m->tok);
    ft_tokens tk;
    CHECK(ft_tokens_choose(m, NULL, &tk, &err) == HN_OK, "%s", err.msg);
    CHECK(tk.eot == eos && tk.eot_untrained && tk.n == 1 && tk.ids[0] == eos, "auto: %d rows", tk.n);
    CHECK(strstr(tk.why, "equals") && strstr(tk.names, "</s>"), "why: %s / %s", tk.names, tk.why);
    CHECK(ft_tokens_choose(m, "none", &tk, &err) == HN_OK && tk.n == 0, "none: %d rows", tk.n);
    CHECK(ft_tokens_choose(m, "eot", &tk, &err) == HN_OK && tk.n == 1 && tk.ids[0] == eos, "eot");
    CHECK(ft_tokens_choose(m, "eot,5,</s>,<s>", &tk, &err) == HN_OK, "%s", err.msg);
    CHECK(tk.n == 3 && tk.ids[0] == eos && tk.ids[1] == 5 && tk.ids[2] == tok_bos(m->tok),
          "list: %d rows (%s)", tk.n, tk.names);
    CHECK(ft_tokens_choose(m, "eot,no-such-token", &tk, &err) == HN_EINVAL &&
              strstr(err.msg, "'no-such-token' is not a token"), "message: %s", err.msg);
    CHECK(ft_tokens_choose(m, "99999", &tk, &err) == HN_EINVAL, "id out of range accepted");

    /* a trained-looking row (a story word), then the same row shrunk */
    int word = 300;
    char why[200] = "";
    CHECK(!ft_token_untrained(m, word, why, sizeof why), "row %d untrained: %s", word, why);
    int D = m->cfg.dim;
    for (int i = 0; i < D; i++) {
        m->w.lm_head[(size_t)word * D + i] *= 0.01f;
        m->w.tok_emb[(size_t)word * D + i] *= 0.01f;
    }
    CHECK(ft_token_untrained(m, word, why, sizeof why) && strstr(why, "norm"), "shrunk: %s", why);
    model_free(m);
    return test_finish("test_train_tokens");
}
