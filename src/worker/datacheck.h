/* datacheck.h — checks a fine-tuning JSONL file the way the Files and Jobs
 * APIs need it: is every line a JSON object (else the upload is refused), how
 * many examples, and the first problems named by line ("line 3: messages[1]:
 * unknown role 'usr'").
 * It calls the shared dataset validator (chat/dataset.h),
 * so uploads, `hone data check` and training agree on one set of rules. */
#ifndef HN_DATACHECK_H
#define HN_DATACHECK_H

#include "base/err.h"

#define DATACHECK_MAX_PROBLEMS 5

typedef struct data_check {
    int n_lines;       /* non-empty lines */
    int n_examples;    /* lines that are valid examples */
    int not_object_line; /* first line that is not a JSON object, 0 if none */
    int n_problems;    /* all problems found (only the first few are described) */
    char problems[2048]; /* "line N: ...; line M: ..." */
} data_check;

/* HN_OK when the file could be read (problems, if any, are in *out). */
/* display_name (the uploaded file name) is what the messages call the file. */
hn_status data_check_file(const char *path, const char *display_name, data_check *out,
                          hn_err *err);

#endif
