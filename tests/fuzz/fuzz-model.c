/* fuzz-model — lfm2_model_load on a file made from the input (the path every caller uses:
 * GGUF reader, hyperparameters, tensor shapes and types, the weight repacking, the
 * vocabulary), then what a caller does next with a model that loaded: describe it, tokenize,
 * create a small context, decode a few tokens, sample.
 *
 * Input: a GGUF file's beginning, then 4 bytes (little-endian) giving the file's full length;
 * the file is the input without those 4 bytes, zero-filled up to that length (at most
 * 64 MiB). The seeds (make-seeds.c) are the headers of the models in tests/data with their
 * real lengths, so mutations land on the metadata and tensor table rather than in megabytes
 * of weights. A refused file must have an error naming it. */
#include "fuzz-common.h"
#include "fuzz-gguf-file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_gguf_file(data, size, path, sizeof path);
    lfm2_clear_error();
    lfm2_model *m = lfm2_model_load(path, lfm2_model_default_params());
    if (!m) {
        fuzz_check_error("lfm2_model_load", path);
        close(fd);
        return 0;
    }

    const struct lfm2_hparams *hp = lfm2_model_get_hparams(m);
    FUZZ_ASSERT(hp->n_vocab > 0 && hp->n_embd > 0 && hp->n_layer > 0, "hparams");
    FUZZ_ASSERT(lfm2_model_n_vocab(m) == hp->n_vocab, "n_vocab");
    FUZZ_ASSERT(lfm2_model_desc(m) && lfm2_model_id(m), "desc/id");
    for (int il = 0; il < hp->n_layer; il++) {
        lfm2_model_layer_kind(m, il);
        FUZZ_ASSERT(lfm2_model_n_head_kv(m, il) >= 0, "n_head_kv(%d)", il);
    }
    for (lfm2_token t = -2; t < hp->n_vocab + 2; t += 1 + hp->n_vocab / 64) {
        char piece[64];
        lfm2_token_text(m, t);
        lfm2_token_is_eog(m, t);
        lfm2_token_to_piece(m, t, piece, sizeof piece, true);
    }

    lfm2_token ids[32];
    const char *text = "Hello <|im_start|>world 123\n";
    int32_t n = lfm2_tokenize(m, text, -1, ids, 32, true, true);
    FUZZ_ASSERT(n != INT32_MIN || *lfm2_last_error(), "tokenize failed silently");
    for (int32_t i = 0; i < n && i < 32; i++)
        FUZZ_ASSERT(ids[i] >= 0 && ids[i] < hp->n_vocab, "token %d out of range", ids[i]);

    struct lfm2_context_params cp = lfm2_context_default_params();
    cp.n_ctx = 8;
    cp.n_batch = 4;
    cp.n_threads = 1;
    lfm2_context *ctx = lfm2_context_new(m, cp);
    if (!ctx) {
        fuzz_check_error("lfm2_context_new", NULL);
    } else {
        lfm2_token batch[3] = { 0, (lfm2_token)(1 % hp->n_vocab), (lfm2_token)(hp->n_vocab - 1) };
        if (lfm2_decode(ctx, lfm2_batch_tokens(batch, 3)) == 0) {
            const float *logits = lfm2_get_logits(ctx, -1);
            FUZZ_ASSERT(logits != NULL, "no logits after a decode");
            struct lfm2_sampler_params sp = lfm2_sampler_default_params();
            lfm2_sampler *s = lfm2_sampler_new(m, sp);
            if (s) {
                lfm2_token t = lfm2_sampler_sample(s, logits);
                FUZZ_ASSERT(t >= 0 && t < hp->n_vocab, "sampled %d of %d", t, hp->n_vocab);
                /* one decode step more, as a generation loop would */
                lfm2_decode(ctx, lfm2_batch_tokens(&t, 1));
                lfm2_sampler_free(s);
            }
        } else {
            fuzz_check_error("lfm2_decode", NULL);
        }
        lfm2_context_free(ctx);
    }
    lfm2_model_free(m);
    close(fd);
    return 0;
}
