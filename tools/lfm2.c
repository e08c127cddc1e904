/* lfm2 — command-line front end of the lfm2-gst engine. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lfm2.h"

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
    const char *program;   /* run as a separate program (git-style), e.g. "lfm2-vision" */
};

static const struct command commands[] = {
    { "generate", cmd_generate, "-m MODEL -p TEXT [-n N] [-t THREADS] [--chat] [--temp X] [--seed S]  stream generated text" },
    { "tokenize", cmd_tokenize, "-m MODEL -f FILE [--bos] [--no-special]  print token ids, one per line" },
    { "logits", cmd_logits, "-m MODEL --tokens 1,2,3 -o OUT [--decode] [-t THREADS]  write float32 logits [n][n_vocab]" },
    { "info", cmd_info, "-m MODEL  architecture, sizes, tensor types, tokenizer" },
    { "bench", cmd_bench, "-m MODEL [-p 512] [-n 128] [-t 2] [-r 3] [--json]  prompt/generation speed" },
    { "mkmodel", cmd_mkmodel, "--config tiny|350m|700m|1.2b|2.6b|moe-tiny|vl-tiny|... --type q8_0 -o OUT  write a random-weight GGUF" },
    /* The image commands live in lfm2-vision, which links FFmpeg: keeping FFmpeg's large
     * dependency tree out of this program keeps `lfm2 bench`'s RSS the engine's own. */
    { "embed-image", NULL, "--mmproj MMPROJ --image FILE -o OUT  image embeddings [n][n_embd]", "lfm2-vision" },
    { "caption", NULL, "-m MODEL --mmproj MMPROJ --image FILE [-p PROMPT]  describe an image", "lfm2-vision" },
    { "embed-audio", NULL, "--mmproj MMPROJ --audio FILE -o OUT [--mel MELOUT]  audio embeddings [n][n_embd]", "lfm2-audio" },
    { "transcribe", NULL, "-m MODEL --mmproj MMPROJ FILE... [--format text|srt|vtt|json]  speech to text", "lfm2-audio" },
    /* speech output: lfm2-audio (libavutil's FFT) */
    { "audio-codes", NULL, "--vocoder VOC --hidden H.f32 -o CODES.i32  greedy audio frames from hidden states", "lfm2-audio" },
    { "audio-embed", NULL, "--vocoder VOC --codes C.i32 -o E.f32  the backbone input of each frame", "lfm2-audio" },
    { "vocode", NULL, "--vocoder VOC --tokenizer TOK --codes C.i32 -o OUT.wav [--raw OUT.f32]  codes to 24 kHz", "lfm2-audio" },
    { "speak", NULL, "-m MODEL --vocoder VOC --tokenizer TOK [--voice V] [-o OUT.wav] TEXT  text to speech", "lfm2-audio" },
    { "s2s", NULL, "-m MODEL --mmproj MMPROJ --vocoder VOC --tokenizer TOK IN -o OUT.wav [--text OUT.txt]  speech to speech", "lfm2-audio" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: lfm2 COMMAND [options]   (lfm2 %s, CPU: %s)\n\ncommands:\n", lfm2_version(),
            lfm2_cpu_features());
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nenvironment: LFM2_CPU_PATH=scalar|avx2|avx512 forces a kernel path\n");
}

/* Runs `program cmd args…` from the directory of this executable (or PATH). */
static int run_program(const char *program, int argc, char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/%s", self, program);
            if (access(path, X_OK) == 0) {
                argv[0] = path;
                execv(path, argv);
            }
        }
    }
    argv[0] = (char *)program;
    execvp(program, argv);
    fprintf(stderr, "lfm2 %s: %s not found (a build configured with -Dvision=disabled, or "
            "without FFmpeg, has none)\n", argv[1], program);
    (void)argc;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("lfm2 %s\n", lfm2_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name))
            continue;
        if (commands[i].program)
            return run_program(commands[i].program, argc, argv);
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "lfm2: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 1;
}
