/* mkmodel-audio.h — LFM2-Audio model pairs for `lfm2 mkmodel` (tools/mkmodel-audio.c): the
 * backbone is mkmodel.c's audio-* config of the same name, the `lfm2a` mmproj comes from here. */
#ifndef LFM2_MKMODEL_AUDIO_H
#define LFM2_MKMODEL_AUDIO_H

#include <stdint.h>

#include "lfm2-gguf.h"

/* Where the mmproj's tensors go: add() plans a tensor of N(mean, std) random values (dims
 * past n_dims are 1). Returns 0, or -1 when out of memory. */
struct mkmodel_sink {
    void *ctx;
    int (*add)(void *ctx, const char *name, float mean, float std, enum lfm2_type type, int n_dims,
               const int64_t ne[4]);
};

/* "f32" / "f16" / "q8_0" → the type of the mmproj's matrices; -1 for anything else. */
int mkmodel_audio_mmproj_type(const char *name);

/* Plans the mmproj's tensors in the converter's order; `mtype` is the matrices' type
 * (convolution kernels, norms, biases and u/v stay F32, as the converter writes them). */
int mkmodel_audio_plan(const char *config, enum lfm2_type mtype, const struct mkmodel_sink *sink);
/* Writes the mmproj's metadata (clip.audio.*, projector lfm2a). */
void mkmodel_audio_keys(lfm2_gguf_writer *w, const char *config, enum lfm2_type mtype, uint64_t seed);

#endif
