/* lfm2-audio — the audio commands of `lfm2` (`lfm2 embed-audio`, `lfm2 transcribe` run this
 * program): a separate executable so that only they link FFmpeg. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "embed-audio"))
        return cmd_embed_audio(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "transcribe"))
        return cmd_transcribe(argc - 1, argv + 1);
    fprintf(stderr, "usage: lfm2-audio embed-audio|transcribe [options]  (also as `lfm2 embed-audio` …)\n");
    return 1;
}
