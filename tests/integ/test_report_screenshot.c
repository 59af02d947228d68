/* test_report_screenshot.c — the eval HTML report opens in a real browser:
 * a short `hone finetune` (1 epoch) and `hone eval --limit 10` against the
 * base model (HONE_BIN) write a report, headless Chromium renders it to a PNG
 * (which must be a 1280x2000 image of non-trivial size) and dumps its DOM
 * (which must hold the summary table, the win/loss cards and all 10 example
 * rows). Skipped (exit 77) only when no Chromium is installed
 * (scripts/install-deps.sh installs Debian's `chromium`); $CHROMIUM overrides
 * the binary. The PNG is kept in the test's tmp directory for a look. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char bin[4096], tmp[512];

static int sh(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* $CHROMIUM, or the first of the usual names on the PATH; NULL if none. */
static const char *find_chromium(void) {
    static char path[4096];
    const char *env = getenv("CHROMIUM");
    if (env && *env) return access(env, X_OK) == 0 ? env : NULL;
    static const char *const names[] = {"chromium", "chromium-browser", "google-chrome"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "command -v %s > '%s/which.txt' 2>/dev/null", names[i], tmp);
        if (sh(cmd) != 0) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/which.txt", tmp);
        char *s = test_read(p, NULL);
        s[strcspn(s, "\n")] = 0;
        snprintf(path, sizeof path, "%s", s);
        free(s);
        if (path[0]) return path;
    }
    return NULL;
}

/* Fine-tunes briefly and writes tmp/report.html from a real eval run. */
static bool make_report(void) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' finetune --model stories260K --train '%s' --out '%s/ft' "
             "--epochs 1 --quiet > '%s/ft.log' 2>&1", bin, test_shared("data/animal/train.jsonl"),
             tmp, tmp);
    int rc = sh(cmd);
    CHECK(rc == 0, "finetune exited %d (see %s/ft.log)", rc, tmp);
    if (rc) return false;
    snprintf(cmd, sizeof cmd, "'%s' eval --model stories260K --adapter '%s/ft/final' "
             "--baseline stories260K --data '%s' --grader exact --limit 10 "
             "--html '%s/report.html' --quiet > '%s/eval.log' 2>&1", bin, tmp,
             test_shared("data/animal/test.jsonl"), tmp, tmp);
    rc = sh(cmd);
    CHECK(rc == 0, "eval exited %d (see %s/eval.log)", rc, tmp);
    return rc == 0;
}

/* The browser flags: no network, no first-run UI, a throwaway profile. */
static void browser_cmd(char *out, size_t cap, const char *chromium, const char *action,
                        const char *redirect) {
    snprintf(out, cap, "profile=$(mktemp -d) && timeout 180 '%s' --headless --no-sandbox "
             "--disable-gpu --disable-quic --no-first-run --disable-background-networking "
             "--disable-component-update --disable-sync --user-data-dir=\"$profile\" %s "
             "--window-size=1280,2000 'file://%s/report.html' %s; rc=$?; rm -rf \"$profile\"; "
             "exit $rc", chromium, action, tmp, redirect);
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_screenshot(const char *chromium) {
    char cmd[16384], action[700], redirect[1400], png[600];
    snprintf(png, sizeof png, "%s/report.png", tmp);
    snprintf(action, sizeof action, "--screenshot='%s'", png);
    snprintf(redirect, sizeof redirect, "> '%s/shot.log' 2>&1", tmp);
    browser_cmd(cmd, sizeof cmd, chromium, action, redirect);
    int rc = sh(cmd);
    CHECK(rc == 0, "chromium --screenshot exited %d (see %s/shot.log)", rc, tmp);
    struct stat st;
    CHECK(stat(png, &st) == 0 && st.st_size > 30 * 1024, "%s: %lld bytes", png,
          (long long)(stat(png, &st) == 0 ? st.st_size : -1));
    if (stat(png, &st) != 0 || st.st_size < 24) return;
    size_t len;
    unsigned char *p = (unsigned char *)test_read(png, &len);
    CHECK(!memcmp(p, "\x89PNG\r\n\x1a\n", 8) && !memcmp(p + 12, "IHDR", 4), "not a PNG");
    CHECK(be32(p + 16) == 1280 && be32(p + 20) == 2000, "PNG is %ux%u", be32(p + 16), be32(p + 20));
    printf("screenshot: %s (%zu bytes)\n", png, len);
    free(p);
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void test_dom(const char *chromium) {
    char cmd[16384], redirect[1400], dom[600];
    snprintf(dom, sizeof dom, "%s/dom.html", tmp);
    snprintf(redirect, sizeof redirect, "> '%s' 2> '%s/dom.log'", dom, tmp);
    browser_cmd(cmd, sizeof cmd, chromium, "--dump-dom", redirect);
    int rc = sh(cmd);
    CHECK(rc == 0, "chromium --dump-dom exited %d (see %s/dom.log)", rc, tmp);
    char *s = test_read(dom, NULL);
    CHECK(strstr(s, "<table class=\"summary\">") && strstr(s, "<th>baseline</th>") &&
              strstr(s, "<th>model</th>"), "summary table missing from the DOM");
    CHECK(strstr(s, "<h2>Model vs baseline on exact</h2>") && strstr(s, "wins</div>"),
          "comparison cards missing");
    const char *ex = strstr(s, "<table class=\"ex\">");
    CHECK(ex && count(ex, "<tr class=\"") == 10, "%d example rows", ex ? count(ex, "<tr class=\"") : 0);
    CHECK(strstr(s, "</body></html>") != NULL, "the page was not parsed to its end");
    free(s);
}

int main(void) {
    const char *b = getenv("HONE_BIN");
    if (!b) {
        fprintf(stderr, "test_report_screenshot: HONE_BIN is not set\n");
        return 1;
    }
    snprintf(bin, sizeof bin, "%s", b);
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir());
    const char *chromium = find_chromium();
    if (!chromium) {
        printf("test_report_screenshot: SKIPPED: no chromium found (install Debian's chromium: "
               "scripts/install-deps.sh, or set CHROMIUM=/path/to/chrome)\n");
        return 77;
    }
    if (make_report()) {
        test_screenshot(chromium);
        test_dom(chromium);
    }
    return test_finish("test_report_screenshot");
}
