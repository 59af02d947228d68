/* dataset_internal.h — shared between dataset.c (file reading, problem list)
 * and dataset_example.c (validation of one example). Not a public header. */
#ifndef HN_CHAT_DATASET_INTERNAL_H
#define HN_CHAT_DATASET_INTERNAL_H

#include "chat/dataset.h"

/* Records a problem: counts it, keeps it if under the limit, and formats
 * "name:line: field: kind: detail" (parts omitted when empty/zero). */
void ds_add_problem(chat_dataset *ds, chat_problem_kind kind, long line, int msg_index,
                    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Validation switches: the file rules, or the laxer serving-request rules. */
typedef struct ds_rules {
    bool require_assistant;
    bool ignore_unknown_keys;
} ds_rules;

bool ds_example_convert(const json_t *obj, long line, const ds_rules *rules, chat_dataset *ds,
                        chat_example *ex);

/* JSON type for messages: "a string", "an array", "null", ... */
const char *ds_json_type(const json_t *v);

#endif
