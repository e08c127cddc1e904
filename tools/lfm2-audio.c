/* lfm2-audio — the audio commands of `lfm2` (`lfm2 embed-audio`, `lfm2 transcribe`,
 * `lfm2 speak` … run this program): a separate executable so that only they link FFmpeg. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    /* speech input */
    { "embed-audio", cmd_embed_audio },
    { "transcribe", cmd_transcribe },
    /* speech output */
    { "audio-codes", cmd_audio_codes },
    { "audio-embed", cmd_audio_embed },
    { "vocode", cmd_vocode },
    { "speak", cmd_speak },
    { "s2s", cmd_s2s },
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc >= 2 && i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "usage: lfm2-audio COMMAND [options]  (also as `lfm2 COMMAND`)\ncommands:");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, " %s", commands[i].name);
    fputc('\n', stderr);
    return 1;
}
