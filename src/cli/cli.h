/* cli.h — subcommand entry points (argc/argv start at the command name) and
 * small shared helpers for option parsing. Only cli/ prints and exits. */
#ifndef HN_CLI_H
#define HN_CLI_H

#include <stdbool.h>
#include <stddef.h>

int cmd_generate(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_init_model(int argc, char **argv);
/* API client commands (client.h): talk to `hone serve` or OpenAI over HTTP. */
int cmd_files(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_chat(int argc, char **argv);

/* True if argv[*i] is --name; then *val = argv[++*i] (error printed if missing). */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val, bool *bad);
bool cli_flag(char **argv, int i, const char *name);
/* --template-var NAME=VALUE: VALUE as JSON when it parses (false, 3, "x"),
 * else as a string, merged into vars (JSON object text of cap bytes; "" = none).
 * False with a message on stderr when malformed. */
bool cli_template_var(const char *cmd, const char *arg, char *vars, size_t cap);
/* --precision: how the matrix products run. f32 keeps every product exact in
 * f32; bf16 runs them through oneDNN with bf16 inputs and f32 accumulation
 * (faster, documented looser tolerance; docs/bench.md); q8_0 (inference only)
 * runs the weight products of the model on Q8_0 copies of its weights,
 * llama.cpp's format (fastest decode; docs/bench.md). auto (the default, also
 * with no --precision): a model loaded from a GGUF whose matrices are Q8_0
 * computes in q8_0, else model/precision.h's rule (bf16 for wide models on
 * CPUs with native bf16, else f32). */
typedef enum cli_prec { CLI_PREC_DEFAULT = 0, CLI_PREC_F32, CLI_PREC_BF16, CLI_PREC_Q8_0 } cli_prec;
/* Parses --precision's value for cmd; f32/bf16 set the process's GEMM backend
 * now, q8_0 is applied per model by cli_precision_apply. training: q8_0 is
 * refused ("q8_0 is an inference precision; ..."). False with a message on
 * stderr when unknown or unavailable. */
bool cli_precision(const char *cmd, const char *v, bool training, cli_prec *out);
/* After loading m for inference: puts it in q8_0 when p is q8_0, or when p is
 * the default and m came from a Q8_0 GGUF; for the default otherwise, applies
 * the auto rule (each choice said on stderr unless quiet). False with a
 * message when that fails. */
struct hn_model;
bool cli_precision_apply(const char *cmd, cli_prec p, struct hn_model *m, bool quiet);
#define CLI_TEMPLATE_VAR_HELP                                                      \
    "  --template-var K=V      chat template variable, e.g. enable_thinking=false\n" \
    "                          (repeatable; a fine-tune keeps and reuses its own)\n"
bool cli_want_help(int argc, char **argv);
/* HONE_MODEL, else the bundled stories260K GGUF under the shared folder. */
const char *cli_default_model(void);
/* --model's value as a path: an existing file or directory is used as is; a
 * bare name ("stories260K") is looked up in each directory of $HONE_MODELS
 * (colon-separated), then in <HONE_SHARED>/models (<name>/<name>.gguf,
 * <name>/ with config.json, <name>/hf/, <name>.gguf). Returns false with a
 * message on stderr listing where it looked. */
bool cli_resolve_model(const char *name_or_path, char *out, size_t cap);

#endif
