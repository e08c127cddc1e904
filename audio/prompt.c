/* prompt.c — the ASR request around the audio rows, in the LFM2 chat layout (spec §3; what
 * liquid-audio's ChatState and llama.cpp's mtmd build): no marker tokens, the embeddings sit
 * between "<|im_start|>user\n" and "<|im_end|>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio-impl.h"

int32_t lfm2_audio_prompt_prefix(const lfm2_model *text, const char *system, lfm2_token *out,
                                 int32_t n_max)
{
    if (!text)
        return lfm2_set_error("lfm2_audio_prompt_prefix: no text model"), INT32_MIN;
    if (!system)
        system = LFM2_AUDIO_ASR_SYSTEM;
    const size_t len = strlen(system) + 64;
    char *s = malloc(len);
    if (!s)
        return lfm2_set_error("out of memory"), INT32_MIN;
    if (*system)
        snprintf(s, len, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n", system);
    else
        snprintf(s, len, "<|im_start|>user\n");
    const int32_t r = lfm2_tokenize(text, s, -1, out, n_max, true, true);
    free(s);
    return r;
}

int32_t lfm2_audio_prompt_suffix(const lfm2_model *text, lfm2_token *out, int32_t n_max)
{
    if (!text)
        return lfm2_set_error("lfm2_audio_prompt_suffix: no text model"), INT32_MIN;
    return lfm2_tokenize(text, "<|im_end|>\n<|im_start|>assistant\n", -1, out, n_max, false, true);
}
