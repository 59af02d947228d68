/* api_chat.c — /v1/chat/completions and the legacy /v1/completions: request
 * checking (types and ranges of the sampling parameters), the model from the
 * registry's cache, the prompt, then genrun for the answer or the stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/genrun.h"
#include "server/prompt.h"

/* Optional number field in [lo, hi]; false after replying 400. */
static bool opt_number(http_req *r, json_t *body, const char *key, double lo, double hi,
                       double *out, enum MHD_Result *res) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        *res = http_bad(r, key, "Invalid '%s': expected a number from %g to %g.", key, lo, hi);
        return false;
    }
    *out = json_number_value(v);
    return true;
}

static bool opt_int(http_req *r, json_t *body, const char *key, long long lo, long long hi,
                    long long *out, enum MHD_Result *res) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        *res = http_bad(r, key, "Invalid '%s': expected an integer from %lld to %lld.", key, lo, hi);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool parse_stops(http_req *r, json_t *body, gen_job *g, enum MHD_Result *res) {
    json_t *v = json_object_get(body, "stop");
    if (!v || json_is_null(v)) return true;
    json_t *arr = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
    bool ok = json_is_array(arr) && json_array_size(arr) <= GEN_MAX_STOPS;
    for (size_t i = 0; ok && i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        ok = s && *s && strlen(s) < sizeof g->stops[0];
        if (ok) snprintf(g->stops[g->n_stops++], sizeof g->stops[0], "%s", s);
    }
    json_decref(arr);
    if (!ok)
        *res = http_bad(r, "stop", "Invalid 'stop': expected a string or an array of up to 4 "
                                   "non-empty strings.");
    return ok;
}

/* Sampling parameters common to both endpoints. */
static bool parse_sampling(http_req *r, json_t *body, gen_job *g, long long *n, bool *stream,
                           enum MHD_Result *res) {
    double temp = 1, top_p = 1;
    long long max_tokens = -1, seed = -1;
    bool ok = opt_number(r, body, "temperature", 0, 2, &temp, res) &&
              opt_number(r, body, "top_p", 0, 1, &top_p, res) &&
              opt_int(r, body, "max_tokens", 1, 1 << 30, &max_tokens, res) &&
              opt_int(r, body, "max_completion_tokens", 1, 1 << 30, &max_tokens, res) &&
              opt_int(r, body, "seed", -(1LL << 62), 1LL << 62, &seed, res) &&
              opt_int(r, body, "n", 1, 128, n, res) && parse_stops(r, body, g, res);
    if (!ok) return false;
    json_t *s = json_object_get(body, "stream");
    if (s && !json_is_null(s) && !json_is_boolean(s)) {
        *res = http_bad(r, "stream", "Invalid 'stream': expected a boolean.");
        return false;
    }
    *stream = json_is_true(s);
    g->include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"),
                                                    "include_usage"));
    gen_params_default(&g->gp);
    g->gp.temperature = (float)temp;
    g->gp.top_p = (float)top_p;
    g->gp.max_tokens = max_tokens > 0 ? (int)max_tokens : (g->chat ? 0 : 16);
    if (seed < 0 && getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = time(NULL);
    g->gp.seed = (uint64_t)seed;
    return true;
}

static bool acquire_model(http_req *r, json_t *body, gen_job *g, enum MHD_Result *res) {
    json_t *v = json_object_get(body, "model");
    if (!json_is_string(v)) {
        *res = http_bad(r, "model", v ? "Invalid 'model': expected a string."
                                      : "Missing required parameter: 'model'.");
        return false;
    }
    snprintf(g->model_id, sizeof g->model_id, "%s", json_string_value(v));
    hn_err err;
    hn_status rc = registry_acquire(r->srv->reg, g->model_id, &g->m, &err);
    if (rc == HN_ENOTFOUND)
        *res = http_error(r, 404, "invalid_request_error", "model", "model_not_found", "%s",
                          err.msg);
    else if (rc != HN_OK)
        *res = http_error(r, 500, "server_error", "model", NULL, "Could not load model %s: %s",
                          g->model_id, err.msg);
    return rc == HN_OK;
}

static bool check_context(http_req *r, gen_job *g, enum MHD_Result *res) {
    int ctx = g->m->cfg.max_seq_len;
    if (g->n_prompt < ctx) return true;
    *res = http_error(r, 400, "invalid_request_error", "messages", "context_length_exceeded",
                      "This model's maximum context length is %d tokens. However, your messages "
                      "resulted in %d tokens.",
                      ctx, g->n_prompt);
    return false;
}

static json_t *choice_json(const gen_job *g, int index, const gen_out *o) {
    if (g->chat)
        return json_pack("{s:i,s:{s:s,s:s,s:n},s:n,s:s}", "index", index, "message", "role",
                         "assistant", "content", o->text, "refusal", "logprobs", "finish_reason",
                         o->finish);
    return json_pack("{s:i,s:s,s:n,s:s}", "index", index, "text", o->text, "logprobs",
                     "finish_reason", o->finish);
}

/* Non-streaming: n answers, each with its own seed, then one reply. */
static enum MHD_Result answer(http_req *r, gen_job *g, long long n) {
    json_t *choices = json_array();
    int total = 0;
    hn_err err;
    for (long long i = 0; i < n; i++) {
        gen_out o = {0};
        if (gen_job_run(g, &o, &err) != HN_OK) {
            json_decref(choices);
            return http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
        }
        json_array_append_new(choices, choice_json(g, (int)i, &o));
        total += o.n_generated;
        free(o.text);
        g->gp.seed++;
    }
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:o,s:{s:i,s:i,s:i},s:n}", "id", g->id, "object",
                          g->chat ? "chat.completion" : "text_completion", "created",
                          (json_int_t)g->created, "model", g->model_id, "choices", choices,
                          "usage", "prompt_tokens", g->n_prompt, "completion_tokens", total,
                          "total_tokens", g->n_prompt + total, "system_fingerprint");
    return http_json(r, 200, o);
}

/* Prompt of either endpoint; false after replying. */
static bool build_prompt(http_req *r, json_t *body, gen_job *g, enum MHD_Result *res) {
    hn_err err;
    hn_status rc;
    if (g->chat) {
        /* chat_template_kwargs (as vLLM and SGLang take it), else the fine-tune's */
        json_t *kw = json_object_get(body, "chat_template_kwargs");
        if (kw && !json_is_object(kw)) {
            *res = http_bad(r, "chat_template_kwargs", "Invalid 'chat_template_kwargs': expected an object.");
            return false;
        }
        g->tmpl_vars = json_object_size(kw) ? json_dumps(kw, JSON_COMPACT)
                       : g->m->chat_template_vars ? strdup(g->m->chat_template_vars) : NULL;
        rc = prompt_render_chat(g->m, json_object_get(body, "messages"),
                                json_object_get(body, "tools"), g->tmpl_vars, &g->prompt,
                                &g->n_prompt, &err);
    } else {
        json_t *p = json_object_get(body, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1) p = json_array_get(p, 0);
        if (!json_is_string(p)) {
            *res = http_bad(r, "prompt", "Invalid 'prompt': expected a string.");
            return false;
        }
        rc = prompt_encode_text(g->m, json_string_value(p), &g->prompt, &g->n_prompt, &err);
    }
    const char *param = !g->chat ? "prompt"
                        : !strncmp(err.msg, "chat template variable", 22) ? "chat_template_kwargs"
                        : !strncmp(err.msg, "tools", 5) ? "tools" : "messages";
    if (rc == HN_EINVAL) *res = http_bad(r, param, "%s", err.msg);
    else if (rc != HN_OK) *res = http_error(r, 500, "server_error", NULL, NULL, "%s", err.msg);
    return rc == HN_OK && check_context(r, g, res);
}

static bool check_messages(http_req *r, json_t *body, enum MHD_Result *res) {
    json_t *m = json_object_get(body, "messages");
    if (json_is_array(m) && json_array_size(m) > 0) return true;
    *res = http_bad(r, "messages", m ? "Invalid 'messages': expected a non-empty array."
                                     : "Missing required parameter: 'messages'.");
    return false;
}

static enum MHD_Result complete(http_req *r, bool chat) {
    if (strcmp(r->method, "POST"))
        return http_not_found(r, NULL, "Unknown request URL: %s.", r->method);
    enum MHD_Result res;
    json_t *body = http_body_json(r, &res);
    if (!body) return res;
    gen_job *g = calloc(1, sizeof *g);
    g->srv = r->srv;
    g->chat = chat;
    g->created = (long long)time(NULL);
    store_new_id(chat ? "chatcmpl-" : "cmpl-", g->id, sizeof g->id);
    long long n = 1;
    bool stream = false;
    bool ok = (!chat || check_messages(r, body, &res)) &&
              parse_sampling(r, body, g, &n, &stream, &res) && acquire_model(r, body, g, &res) &&
              build_prompt(r, body, g, &res);
    if (ok && stream && n > 1) {
        res = http_bad(r, "n", "Streaming supports n=1 only.");
        ok = false;
    }
    json_decref(body);
    if (!ok) {
        gen_job_free(g);
        return res;
    }
    if (stream) return gen_job_stream(r, g);
    res = answer(r, g, n);
    gen_job_free(g);
    return res;
}

enum MHD_Result api_chat(http_req *r, char **seg, int nseg) {
    if (nseg == 2 && !strcmp(seg[1], "completions")) return complete(r, true);
    return http_not_found(r, NULL, "Unknown request URL: %s /v1/chat/....", r->method);
}

enum MHD_Result api_completions(http_req *r, char **seg, int nseg) {
    (void)seg;
    if (nseg == 1) return complete(r, false);
    return http_not_found(r, NULL, "Unknown request URL: %s /v1/completions/....", r->method);
}
