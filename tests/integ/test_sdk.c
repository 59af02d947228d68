/* test_sdk.c — runs the node:test suites in tests/integ/node (the official
 * `openai` npm SDK against a real `hone serve`, path in HONE_BIN). Exits 77
 * (CTest SKIP_RETURN_CODE) and says so when node or node_modules is missing;
 * CI runs `npm ci` in tests/integ/node first. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/file.h"

int main(void) {
    char src[4096], dir[4200], mods[4300], cmd[9000];
    snprintf(src, sizeof src, "%s", __FILE__);
    snprintf(dir, sizeof dir, "%s/node", dirname(src));
    snprintf(mods, sizeof mods, "%s/node_modules/openai", dir);
    if (!getenv("HONE_BIN")) {
        fprintf(stderr, "test_sdk: HONE_BIN is not set\n");
        return 1;
    }
    if (!hn_path_is_dir(mods)) {
        printf("SKIP test_sdk: %s is missing (run `npm ci` in %s)\n", mods, dir);
        return 77;
    }
    if (system("node --version > /dev/null 2>&1") != 0) {
        printf("SKIP test_sdk: node is not installed\n");
        return 77;
    }
    snprintf(cmd, sizeof cmd, "cd '%s' && node --test --test-concurrency=1 *.test.mjs", dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}
