/* lfm2-vision — the image commands of `lfm2` (`lfm2 embed-image`, `lfm2 caption` run this
 * program): a separate executable so that only they link FFmpeg. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "embed-image"))
        return cmd_embed_image(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "caption"))
        return cmd_caption(argc - 1, argv + 1);
    fprintf(stderr, "usage: lfm2-vision embed-image|caption [options]  (also as `lfm2 embed-image` …)\n");
    return 1;
}
