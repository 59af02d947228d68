/* dataset.h — OpenAI chat-format JSONL training files: streaming parse,
 * validation and the in-memory examples the template renders.
 *
 * One entry point (chat_dataset_load / chat_dataset_load_fp) is used by
 * `hone data check`, upload validation and job creation, so the problem
 * messages are identical everywhere. Every problem names the file, the
 * 1-based line, the field path and an OpenAI-cookbook error kind:
 *
 *   train.jsonl:17: messages[2].role: unrecognized_role: 'usr' is not one of
 *   system, user, assistant, tool
 *
 * The format and the rules are documented in docs/data.md. */
#ifndef HN_CHAT_DATASET_H
#define HN_CHAT_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/err.h"

typedef enum chat_role { CHAT_SYSTEM = 0, CHAT_USER, CHAT_ASSISTANT, CHAT_TOOL } chat_role;

/* "system", "user", "assistant", "tool". */
const char *chat_role_name(chat_role r);

typedef struct chat_tool_call {
    char *id;        /* may be "" */
    char *name;      /* function name, non-empty */
    char *arguments; /* the arguments string, as given */
} chat_tool_call;

/* One message. Strings are owned by the example and NUL-terminated (JSON text
 * cannot carry NUL: "\u0000" is refused by the parser). */
typedef struct chat_message {
    chat_role role;
    bool developer;     /* role was "developer" (treated as system) */
    char *content;      /* never NULL: "" for null content; text parts joined */
    size_t content_len;
    char *name;         /* optional, NULL if absent */
    int weight;         /* 0 or 1; always 1 for non-assistant messages */
    chat_tool_call *tool_calls; /* assistant only */
    int n_tool_calls;
    char *tool_call_id; /* tool only, else NULL */
} chat_message;

typedef struct chat_example {
    long line;               /* 1-based line in the file (0 if not from a file) */
    chat_message *msgs;
    int n_msgs;
    char *tools_json;        /* compact JSON of the top-level "tools" array, or NULL */
    int parallel_tool_calls; /* -1 absent, else 0/1 */
    uint64_t hash;           /* of the canonical JSON (sorted keys): duplicate detection */
} chat_example;

void chat_example_free(chat_example *ex);

/* Problem kinds. The names (chat_problem_kind_name) are the wire codes. */
typedef enum chat_problem_kind {
    CHAT_P_DATA_TYPE = 0,                  /* line is not a JSON object */
    CHAT_P_MISSING_MESSAGES_LIST,          /* no "messages", not an array, or empty */
    CHAT_P_MESSAGE_MISSING_KEY,            /* role, content or tool_call_id absent */
    CHAT_P_MESSAGE_UNRECOGNIZED_KEY,       /* a key outside the accepted set */
    CHAT_P_UNRECOGNIZED_ROLE,              /* role not system/developer/user/assistant/tool */
    CHAT_P_MISSING_CONTENT,                /* content null/empty where needed, or wrong type */
    CHAT_P_EXAMPLE_MISSING_ASSISTANT_MESSAGE,
    CHAT_P_INVALID_JSON,                   /* JSON syntax error, NUL byte, "\u0000" */
    CHAT_P_INVALID_UTF8,
    CHAT_P_INVALID_WEIGHT,                 /* not 0/1, or on a non-assistant message */
    CHAT_P_INVALID_TOOL_CALLS,             /* malformed tool_calls / tool_call_id */
    CHAT_P_INVALID_TOOLS,                  /* malformed top-level tools / parallel_tool_calls */
    CHAT_P_INVALID_TYPE,                   /* name / tool_call_id / role not a string */
    CHAT_P_UNSUPPORTED_CONTENT,            /* a content part other than text (images) */
    CHAT_P_BLANK_LINE,                     /* an empty line before the end of the file */
    CHAT_P_LINE_TOO_LONG,
    CHAT_P_EMPTY_FILE,
    CHAT_P_TOO_FEW_EXAMPLES,
    CHAT_P_COUNT
} chat_problem_kind;

const char *chat_problem_kind_name(chat_problem_kind k);

typedef struct chat_problem {
    chat_problem_kind kind;
    bool warning;      /* only too_few_examples can be a warning */
    long line;         /* 1-based; 0 for whole-file problems */
    int msg_index;     /* -1 when not about one message */
    char field[128];   /* "messages[2].role", "" when about the whole line */
    char text[640];    /* the full message: "name:line: field: kind: detail" */
} chat_problem;

typedef struct chat_dataset_opts {
    const char *display_name; /* used in messages; NULL = basename of the path */
    size_t max_line_bytes;    /* default 16 MiB */
    int min_examples;         /* default 10; 0 = no minimum */
    bool min_examples_is_error; /* default true (jobs); the CLI makes it a warning */
    int max_problems_kept;    /* default 100: the first N are kept, all are counted */
    bool keep_examples;       /* default true; false: validate and count only */
} chat_dataset_opts;

void chat_dataset_opts_default(chat_dataset_opts *o);

typedef struct chat_dataset {
    char name[256];              /* display name */
    chat_dataset_opts opts;      /* as given (display_name points at name) */
    chat_example *examples;      /* valid examples (if keep_examples) in file order */
    size_t n_examples;           /* valid examples (counted even if not kept) */
    size_t n_lines;              /* physical lines read */
    size_t n_invalid;            /* non-blank lines with at least one problem */
    size_t counts[CHAT_P_COUNT]; /* problems per kind */
    size_t n_errors, n_warnings; /* problems by severity */
    chat_problem *problems;      /* the first max_problems_kept */
    size_t n_problems;
    size_t cap_examples, cap_problems; /* internal */
    bool oom;                          /* internal: an allocation failed */
} chat_dataset;

/* Reads and validates a JSONL file. Returns HN_OK when the file could be read,
 * even if it has problems (inspect ds->n_errors); HN_EIO/HN_ENOMEM otherwise.
 * The caller owns ds (chat_dataset_free) in every case. opts may be NULL. */
hn_status chat_dataset_load(const char *path, const chat_dataset_opts *opts, chat_dataset *ds,
                            hn_err *err);
/* The same from an open stream (e.g. fmemopen over uploaded bytes). */
hn_status chat_dataset_load_fp(FILE *f, const chat_dataset_opts *opts, chat_dataset *ds,
                               hn_err *err);
void chat_dataset_free(chat_dataset *ds);

/* True if the dataset has no error-level problem. */
bool chat_dataset_ok(const chat_dataset *ds);
/* The first error-level problem (for a job's error message), or NULL. */
const chat_problem *chat_dataset_first_error(const chat_dataset *ds);

/* Starts an empty dataset (for chat_example_from_json without a file). */
void chat_dataset_init(chat_dataset *ds, const chat_dataset_opts *opts);

/* Validates one parsed JSON line (an example) and converts it. Problems are
 * appended to ds (which supplies the display name and limits); returns true
 * and fills *ex (caller frees) when the example is valid. */
bool chat_example_from_json(const json_t *obj, long line, chat_dataset *ds, chat_example *ex);

/* For serving: converts a Chat Completions request's "messages" (and optional
 * "tools") with the same rules, except that no assistant message is required
 * and unknown message keys are ignored. On failure err holds the first
 * problem ("messages[2].role: unrecognized_role: ..."). */
hn_status chat_example_from_request(const json_t *messages, const json_t *tools,
                                    chat_example *ex, hn_err *err);

#endif
