/* cmd_models.c — `hone models list|get|delete`: the Models API of a running
 * `hone serve` (or OpenAI) through the client in client.c. */
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char *usage =
    "usage: hone models <subcommand> [options]\n"
    "\n"
    "  list          base models and fine-tuned (ft:...) models\n"
    "  get ID        show a model\n"
    "  delete ID     delete a fine-tuned model\n"
    "\n"
    "common options:\n";

static const char *const model_fields[] = {"id", "object", "created", "owned_by", NULL};

static void print_model(const json_t *m) { hc_print_fields(m, model_fields); }

static void print_models(const json_t *page) {
    static const char *const keys[] = {"id", "created", "owned_by", NULL};
    static const int widths[] = {52, 19, 0};
    hc_print_table(page, keys, widths);
}

static void print_deleted(const json_t *j) {
    char b[512];
    printf("deleted %s\n", hc_str(j, "id", b, sizeof b));
}

static int models_list(hc *c, int argc, char **argv) {
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        if (hc_common_opt(c, argc, argv, &i, &bad)) continue;
        if (!hc_positional(c, argv, i, NULL, &(int){0}, 0)) return 2;
    }
    return bad ? 2 : hc_show(c, hc_call(c, "GET", "/models", NULL), print_models);
}

static int models_one(hc *c, int argc, char **argv, const char *method,
                      void (*human)(const json_t *)) {
    const char *id;
    char path[1024];
    int rc = hc_id_args(c, argc, argv, &id);
    if (rc) return rc;
    hc_path(path, sizeof path, "/models/", id, NULL);
    return hc_show(c, hc_call(c, method, path, NULL), human);
}

static int models_get(hc *c, int argc, char **argv) {
    return models_one(c, argc, argv, "GET", print_model);
}

static int models_delete(hc *c, int argc, char **argv) {
    return models_one(c, argc, argv, "DELETE", print_deleted);
}

int cmd_models(int argc, char **argv) {
    static const hc_sub subs[] = {
        {"list", models_list}, {"get", models_get}, {"delete", models_delete}, {NULL, NULL}};
    char full[2048];
    snprintf(full, sizeof full, "%s%s", usage, hc_common_usage);
    return hc_dispatch("models", subs, full, argc, argv);
}
