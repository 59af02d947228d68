/* cli_util.c — option parsing helpers shared by the subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val, bool *bad) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n)) return false;
    if (a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if (a[n] != 0) return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "hone: option %s needs a value\n", name);
        *bad = true;
        return true;
    }
    *val = argv[++*i];
    return true;
}

bool cli_flag(char **argv, int i, const char *name) { return !strcmp(argv[i], name); }

bool cli_want_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

const char *cli_default_model(void) {
    static char path[4096];
    const char *env = getenv("HONE_MODEL");
    if (env && *env) return env;
    const char *shared = getenv("HONE_SHARED");
    snprintf(path, sizeof path, "%s/models/stories260K/stories260K.gguf",
             shared && *shared ? shared : HONE_DEFAULT_SHARED);
    return path;
}
