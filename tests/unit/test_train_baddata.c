/* test_train_baddata.c — a bad training or validation file stops ft_run
 * before any training, with the shared validator's message naming the file,
 * the line, the message index and the field ("bad.jsonl:2: messages[1].role:
 * unrecognized_role: ..."), and nothing is written as a result. */
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "train/finetune.h"
#include "test.h"

static const char *good =
    "{\"messages\": [{\"role\": \"user\", \"content\": \"A cat.\"}, "
    "{\"role\": \"assistant\", \"content\": \"cat\"}]}\n";

typedef struct bad_case {
    const char *name, *line;
    const char *want[3]; /* substrings of the error after "<file>:2: " */
} bad_case;

static const bad_case cases[] = {
    {"malformed_json", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}",
     {"invalid_json", "column", NULL}},
    {"missing_messages", "{\"prompt\": \"x\", \"completion\": \"y\"}",
     {"messages:", "missing_messages_list", NULL}},
    {"messages_not_array", "{\"messages\": \"hello\"}", {"messages:", "not an array", NULL}},
    {"unknown_role",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"usr\", \"content\": "
     "\"y\"}, {\"role\": \"assistant\", \"content\": \"z\"}]}",
     {"messages[1].role", "'usr'", NULL}},
    {"no_assistant", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}",
     {"messages:", "no assistant message", NULL}},
    {"content_type",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", "
     "\"content\": 5}]}",
     {"messages[1].content", "number", NULL}},
    {"role_type",
     "{\"messages\": [{\"role\": 3, \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": "
     "\"y\"}]}",
     {"messages[0].role", NULL, NULL}},
    {"weight_type",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", "
     "\"content\": \"y\", \"weight\": \"1\"}]}",
     {"messages[1].weight", "invalid_weight", NULL}},
};

static const char *write_file(const char *name, const char *bad_line) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s.jsonl", test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    fprintf(f, "%s%s\n%s", good, bad_line, good);
    fclose(f);
    return path;
}

static void check_case(const bad_case *bc, bool as_valid) {
    char good_path[512], out[600], prefix[256];
    snprintf(good_path, sizeof good_path, "%s/good.jsonl", test_tmpdir());
    const char *bad = write_file(bc->name, bc->line);
    snprintf(out, sizeof out, "%s/out-%s-%d", test_tmpdir(), bc->name, as_valid);
    ft_config c;
    ft_config_default(&c);
    c.model_path = test_shared("models/stories260K/stories260K.gguf");
    c.train_path = as_valid ? good_path : bad;
    c.valid_path = as_valid ? bad : NULL;
    c.n_epochs = 1;
    c.out_dir = out;
    ft_result res;
    hn_err err = {0};
    hn_status s = ft_run(&c, NULL, &res, &err);
    snprintf(prefix, sizeof prefix, "%s.jsonl:2: ", bc->name);
    CHECK(s == HN_EINVAL, "%s: status %d (%s)", bc->name, s, err.msg);
    CHECK(strstr(err.msg, prefix) != NULL, "%s: '%s' does not name file and line ('%s')", bc->name,
          err.msg, prefix);
    for (int i = 0; i < 3 && bc->want[i]; i++)
        CHECK(strstr(err.msg, bc->want[i]) != NULL, "%s: '%s' lacks '%s'", bc->name, err.msg,
              bc->want[i]);
    char final[700];
    snprintf(final, sizeof final, "%s/final", out);
    CHECK(!hn_path_exists(final), "%s: a model was written", bc->name);
    if (getenv("HONE_TEST_VERBOSE")) printf("  %s\n", err.msg);
}

int main(void) {
    char good_path[512];
    snprintf(good_path, sizeof good_path, "%s/good.jsonl", test_tmpdir());
    FILE *f = fopen(good_path, "w");
    fprintf(f, "%s%s", good, good);
    fclose(f);
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        check_case(&cases[i], false);
        check_case(&cases[i], true);
    }
    printf("%d kinds of bad data refused in training and validation files\n", n);
    return test_finish("test_train_baddata");
}
