/* main.c — `hone <command>`: dispatch to the subcommands in src/cli. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"generate", cmd_generate, "generate text from a model"},
    {"inspect", cmd_inspect, "show a model's config, tokenizer and tensors"},
    {"finetune", cmd_finetune, "fine-tune a model (LoRA or full) on chat JSONL"},
    {"data", cmd_data, "check a training file: format, tokens, plan (data check FILE)"},
    {"eval", cmd_eval, "grade a model on chat JSONL, optionally against a baseline"},
    {"export", cmd_export, "merge a fine-tune and write GGUF or HF safetensors"},
    {"init-model", cmd_init_model, "a new random-init model (any family) around a tokenizer"},
    {"serve", cmd_serve, "run the OpenAI-compatible API server"},
    {"bench", cmd_bench, "benchmark training, prefill, decode and GEMM on a random-init model"},
    {"files", cmd_files, "API client: upload, list, get, download, delete files"},
    {"jobs", cmd_jobs, "API client: create, list, follow, cancel fine-tuning jobs"},
    {"models", cmd_models, "API client: list, get, delete models"},
    {"chat", cmd_chat, "API client: chat with a model (--stream for SSE)"},
};

static void usage(FILE *f) {
    fprintf(f, "hone — self-hosted fine-tuning\n\nusage: hone <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`hone <command> --help` shows a command's options.\n");
}

/* libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT when it loads, before main.
 * Its default spin-then-sleep (300,000 spins) makes every small parallel
 * region cost milliseconds on a busy 2-core machine (10x slower runs
 * measured), so hone waits passively unless the user chose a policy. On an
 * idle machine a short bounded spin is much faster (Llama-110M bf16 decode 59
 * -> 95 tokens/s, prefill +20%) but costs under contention (decode 31 -> 14
 * with a second process), so it is used only when the 1-minute load average
 * is under half the CPUs, and never by the server, whose workers share them.
 * Re-exec once with the choice in the environment. */
static bool machine_idle(void) {
    double load = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    bool ok = f && fscanf(f, "%lf", &load) == 1;
    if (f) fclose(f);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return ok && cpus > 0 && load < 0.5 * (double)cpus;
}

static void choose_wait_policy(int argc, char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    bool serve = argc > 1 && !strcmp(argv[1], "serve");
    if (!serve && machine_idle()) setenv("GOMP_SPINCOUNT", "10000", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the default policy */
}

int main(int argc, char **argv) {
    choose_wait_policy(argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "hone: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
