/* genrun.c — generation for the completion endpoints.
 *
 * Text arrives token by token from gen_run. Stop strings are matched on the
 * accumulated text; when streaming, the tail that could still become a stop
 * string or is an incomplete UTF-8 sequence is held back, so a client never
 * sees part of a stop string or half a character. Streaming runs gen_run in a
 * thread that appends SSE events to a buffer; libmicrohttpd's reader callback
 * (in the connection's own thread) waits on it. A client that goes away
 * makes the token callback return false, ending generation. */
#include "server/genrun.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chat/template.h"

typedef struct stream_state {
    gen_job *g;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hn_buf out;      /* SSE bytes not yet sent */
    size_t out_pos;
    bool done, gone;
} stream_state;

typedef struct tok_ctx {
    gen_job *g;
    chat_template *tmpl; /* chat replies: the model's template (reply text, end of turn) */
    int eot;             /* chat replies: the template's end-of-turn id, -1 if none */
    hn_buf text;
    hn_buf head;    /* chat replies: first bytes held while they may be the separator */
    long skip;      /* separator bytes at the reply's start; -1 while undecided */
    size_t emitted; /* bytes of text already streamed */
    bool hit_stop;
    stream_state *ss; /* NULL when not streaming */
} tok_ctx;

/* ---- UTF-8 ---------------------------------------------------------------- */

static int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 0;
}

char *utf8_clean(const char *s, size_t n) {
    hn_buf b;
    hn_buf_init(&b);
    hn_buf_puts(&b, "");
    for (size_t i = 0; i < n;) {
        int k = utf8_len((unsigned char)s[i]);
        bool ok = k > 0 && i + (size_t)k <= n;
        for (int j = 1; ok && j < k; j++) ok = ((unsigned char)s[i + j] & 0xC0) == 0x80;
        if (ok) hn_buf_append(&b, s + i, (size_t)k);
        else hn_buf_puts(&b, "\xEF\xBF\xBD");
        i += ok ? (size_t)k : 1;
    }
    return hn_buf_take(&b);
}

/* Largest end <= len that does not cut a UTF-8 sequence. */
static size_t utf8_safe_end(const char *s, size_t start, size_t len) {
    for (size_t back = 1; back <= 3 && back <= len - start; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if ((c & 0xC0) == 0x80) continue;      /* continuation: keep looking */
        int k = utf8_len(c);
        return k > (int)back ? len - back : len; /* incomplete -> hold it back */
    }
    return len;
}

/* ---- SSE chunks ------------------------------------------------------------ */

static json_t *chunk_base(const gen_job *g) {
    return json_pack("{s:s,s:s,s:I,s:s,s:n}", "id", g->id, "object",
                     g->chat ? "chat.completion.chunk" : "text_completion", "created",
                     (json_int_t)g->created, "model", g->model_id, "system_fingerprint");
}

static json_t *usage_json(int n_prompt, int n_gen) {
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", n_prompt, "completion_tokens", n_gen,
                     "total_tokens", n_prompt + n_gen);
}

/* A chunk with one choice: chat delta (role/content) or completion text. */
static json_t *chunk_choice(const gen_job *g, const char *text, size_t len, bool first,
                            const char *finish) {
    json_t *c = chunk_base(g);
    json_t *choice = json_pack("{s:i,s:n}", "index", 0, "logprobs");
    char *clean = text ? utf8_clean(text, len) : NULL;
    if (g->chat) {
        json_t *delta = json_object();
        if (first) json_object_set_new(delta, "role", json_string("assistant"));
        if (clean) json_object_set_new(delta, "content", json_string(clean));
        if (first) json_object_set_new(delta, "refusal", json_null());
        json_object_set_new(choice, "delta", delta);
    } else {
        json_object_set_new(choice, "text", json_string(clean ? clean : ""));
    }
    free(clean);
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_object_set_new(c, "choices", json_pack("[o]", choice));
    if (g->include_usage) json_object_set_new(c, "usage", json_null());
    return c;
}

static void sse_push(stream_state *ss, json_t *obj) {
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    pthread_mutex_lock(&ss->mu);
    hn_buf_printf(&ss->out, "data: %s\n\n", text ? text : "{}");
    pthread_cond_signal(&ss->cv);
    pthread_mutex_unlock(&ss->mu);
    free(text);
}

static void sse_push_raw(stream_state *ss, const char *s, bool done) {
    pthread_mutex_lock(&ss->mu);
    hn_buf_puts(&ss->out, s);
    if (done) ss->done = true;
    pthread_cond_signal(&ss->cv);
    pthread_mutex_unlock(&ss->mu);
}

/* ---- token callback ------------------------------------------------------------ */

static size_t max_stop_len(const gen_job *g) {
    size_t m = 0;
    for (int i = 0; i < g->n_stops; i++)
        if (strlen(g->stops[i]) > m) m = strlen(g->stops[i]);
    return m;
}

/* Looks for a stop string ending in the newly added bytes; truncates there. */
static void check_stops(tok_ctx *c, size_t added) {
    gen_job *g = c->g;
    size_t ms = max_stop_len(g);
    if (!ms) return;
    size_t from = c->text.len >= added + ms ? c->text.len - added - ms + 1 : 0;
    size_t best = (size_t)-1;
    for (int i = 0; i < g->n_stops; i++) {
        const char *p = memmem(c->text.data + from, c->text.len - from, g->stops[i],
                               strlen(g->stops[i]));
        if (p && (size_t)(p - c->text.data) < best) best = (size_t)(p - c->text.data);
    }
    if (best == (size_t)-1) return;
    c->text.len = best;
    c->text.data[best] = 0;
    c->hit_stop = true;
}

static void stream_text(tok_ctx *c, bool final) {
    size_t end = c->text.len;
    if (!final) {
        size_t hold = max_stop_len(c->g);
        end = end > c->emitted + (hold ? hold - 1 : 0) ? end - (hold ? hold - 1 : 0) : c->emitted;
        end = utf8_safe_end(c->text.data, c->emitted, end);
    }
    if (end <= c->emitted) return;
    sse_push(c->ss, chunk_choice(c->g, c->text.data + c->emitted, end - c->emitted, false, NULL));
    c->emitted = end;
}

static bool on_token(void *p, int32_t id, const char *text, size_t len) {
    tok_ctx *c = p;
    /* chat replies end at the template's end-of-turn token, which need not be
     * EOS (gen_run stops at EOS by itself) */
    if (c->tmpl && id == c->eot) {
        c->hit_stop = true;
        return false;
    }
    /* the template's separator before the answer (" ", Qwen3's empty think
     * block) is not part of the assistant's text, as in `hone generate --chat` */
    if (c->tmpl && c->skip < 0) {
        hn_buf_append(&c->head, text, len);
        c->skip = chat_template_reply_skip(c->tmpl, c->head.data, c->head.len);
        if (c->skip < 0) return true;
        text = c->head.data + c->skip;
        len = c->head.len - (size_t)c->skip;
    }
    hn_buf_append(&c->text, text, len);
    check_stops(c, len);
    if (c->ss) {
        stream_text(c, false);
        pthread_mutex_lock(&c->ss->mu);
        bool gone = c->ss->gone;
        pthread_mutex_unlock(&c->ss->mu);
        if (gone) return false;
    }
    return !c->hit_stop;
}

static hn_status run(gen_job *g, tok_ctx *c, gen_result *res, hn_err *err) {
    hn_buf_init(&c->text);
    hn_buf_puts(&c->text, "");
    hn_buf_init(&c->head);
    hn_buf_puts(&c->head, "");
    memset(res, 0, sizeof *res);
    c->eot = -1;
    c->skip = -1;
    /* the prompt was rendered with this template, so it parses */
    if (g->chat && chat_template_for_model_vars(g->m->chat_template, g->tmpl_vars, &c->tmpl, err) != HN_OK)
        return err->code;
    if (c->tmpl) c->eot = chat_template_eot(c->tmpl, g->m->tok);
    hn_status rc = gen_run(g->m, g->prompt, g->n_prompt, &g->gp, on_token, c, NULL, res, err);
    hn_buf_free(&c->head); /* a reply that ended inside the separator has no text */
    chat_template_free(c->tmpl);
    c->tmpl = NULL;
    return rc;
}

static const char *finish_of(const tok_ctx *c, const gen_result *res) {
    return c->hit_stop || res->finish == GEN_STOP_EOS ? "stop" : "length";
}

hn_status gen_job_run(gen_job *g, gen_out *out, hn_err *err) {
    tok_ctx c = {.g = g};
    gen_result res;
    hn_status rc = run(g, &c, &res, err);
    out->text = rc == HN_OK ? utf8_clean(c.text.data, c.text.len) : NULL;
    out->finish = finish_of(&c, &res);
    out->n_generated = res.n_generated;
    hn_buf_free(&c.text);
    return rc;
}

void gen_job_free(gen_job *g) {
    if (!g) return;
    if (g->m) registry_release(g->srv->reg, g->m);
    free(g->prompt);
    free(g->tmpl_vars);
    free(g);
}

/* ---- streaming ------------------------------------------------------------------- */

static void *stream_main(void *p) {
    stream_state *ss = p;
    gen_job *g = ss->g;
    if (g->chat) sse_push(ss, chunk_choice(g, "", 0, true, NULL));
    tok_ctx c = {.g = g, .ss = ss};
    gen_result res;
    hn_err err = {0};
    if (run(g, &c, &res, &err) == HN_OK) {
        stream_text(&c, true);
        sse_push(ss, chunk_choice(g, NULL, 0, false, finish_of(&c, &res)));
        if (g->include_usage) {
            json_t *u = chunk_base(g);
            json_object_set_new(u, "choices", json_array());
            json_object_set_new(u, "usage", usage_json(g->n_prompt, res.n_generated));
            sse_push(ss, u);
        }
    } else {
        sse_push(ss, json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", err.msg, "type",
                               "server_error", "param", "code"));
    }
    hn_buf_free(&c.text);
    sse_push_raw(ss, "data: [DONE]\n\n", true);
    return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_state *ss = cls;
    pthread_mutex_lock(&ss->mu);
    while (ss->out_pos == ss->out.len && !ss->done) pthread_cond_wait(&ss->cv, &ss->mu);
    ssize_t n;
    if (ss->out_pos == ss->out.len) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        size_t k = ss->out.len - ss->out_pos < max ? ss->out.len - ss->out_pos : max;
        memcpy(buf, ss->out.data + ss->out_pos, k);
        ss->out_pos += k;
        if (ss->out_pos == ss->out.len) ss->out_pos = ss->out.len = 0;
        n = (ssize_t)k;
    }
    pthread_mutex_unlock(&ss->mu);
    return n;
}

static void stream_free(void *cls) {
    stream_state *ss = cls;
    pthread_mutex_lock(&ss->mu);
    ss->gone = true;
    pthread_mutex_unlock(&ss->mu);
    if (ss->thread_started) pthread_join(ss->thread, NULL);
    gen_job_free(ss->g);
    hn_buf_free(&ss->out);
    pthread_mutex_destroy(&ss->mu);
    pthread_cond_destroy(&ss->cv);
    free(ss);
}

enum MHD_Result gen_job_stream(http_req *r, gen_job *g) {
    stream_state *ss = calloc(1, sizeof *ss);
    if (!ss) {
        gen_job_free(g);
        return http_error(r, 500, "server_error", NULL, NULL, "out of memory");
    }
    ss->g = g;
    pthread_mutex_init(&ss->mu, NULL);
    pthread_cond_init(&ss->cv, NULL);
    hn_buf_init(&ss->out);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, ss, stream_free);
    if (!resp) {
        stream_free(ss);
        return MHD_NO;
    }
    ss->thread_started = pthread_create(&ss->thread, NULL, stream_main, ss) == 0;
    if (!ss->thread_started) sse_push_raw(ss, "data: [DONE]\n\n", true);
    http_add_headers(r, resp, "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    return http_queue(r, 200, resp);
}
