/* vocab.h — the byte-level BPE vocabulary of an LFM2 GGUF (internal to the engine).
 *
 * The model (model.c) owns one struct lfm2_vocab, loaded from the tokenizer.ggml.* keys; the
 * public tokenizer functions of lfm2.h are thin wrappers over the lfm2_vocab_* functions
 * below, reached through lfm2_model_vocab(). Everything here behaves like llama.cpp's
 * llama_vocab for `gpt2` vocabularies with the LLAMA3 pre-tokenizer (see docs/tokenizer.md).
 */
#ifndef LFM2_VOCAB_H
#define LFM2_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lfm2.h"

struct lfm2_vocab;

/* Token attributes (llama.cpp's llama_token_attr bits, from tokenizer.ggml.token_type). */
enum lfm2_token_attr {
    LFM2_ATTR_UNDEFINED = 0,
    LFM2_ATTR_UNKNOWN = 1 << 0,
    LFM2_ATTR_UNUSED = 1 << 1,
    LFM2_ATTR_NORMAL = 1 << 2,
    LFM2_ATTR_CONTROL = 1 << 3,
    LFM2_ATTR_USER_DEFINED = 1 << 4,
    LFM2_ATTR_BYTE = 1 << 5,
};

/* Loads the vocabulary of an open GGUF. NULL with lfm2_last_error() naming the file, the key
 * and the reason (missing key, wrong type, unsupported tokenizer or pre-tokenizer…). */
struct lfm2_vocab *lfm2_vocab_load(const lfm2_gguf *g);
void lfm2_vocab_free(struct lfm2_vocab *v);

/* Implemented by model.c: the vocabulary of a loaded model. */
const struct lfm2_vocab *lfm2_model_vocab(const lfm2_model *m);

int lfm2_vocab_n_tokens(const struct lfm2_vocab *v);
int lfm2_vocab_n_merges(const struct lfm2_vocab *v);
/* Special ids as llama.cpp reports them (-1 when absent). */
lfm2_token lfm2_vocab_bos(const struct lfm2_vocab *v);
lfm2_token lfm2_vocab_eos(const struct lfm2_vocab *v);
lfm2_token lfm2_vocab_eot(const struct lfm2_vocab *v);
lfm2_token lfm2_vocab_pad(const struct lfm2_vocab *v);
lfm2_token lfm2_vocab_nl(const struct lfm2_vocab *v);
bool lfm2_vocab_add_bos(const struct lfm2_vocab *v);
bool lfm2_vocab_add_eos(const struct lfm2_vocab *v);
/* The end-of-generation set, ascending ids; returns its size (writes at most cap ids). */
int lfm2_vocab_eog_ids(const struct lfm2_vocab *v, lfm2_token *ids, int cap);
bool lfm2_vocab_is_eog(const struct lfm2_vocab *v, lfm2_token t);
bool lfm2_vocab_is_control(const struct lfm2_vocab *v, lfm2_token t);
uint32_t lfm2_vocab_attr(const struct lfm2_vocab *v, lfm2_token t);   /* 0 for invalid ids */
/* NUL-terminated entry text (byte-level spelling), NULL for an invalid id; *len if non-NULL. */
const char *lfm2_vocab_text(const struct lfm2_vocab *v, lfm2_token t, size_t *len);
/* Exact text → id (hashed), -1 if absent. */
lfm2_token lfm2_vocab_lookup(const struct lfm2_vocab *v, const char *text, size_t len);
/* The raw bytes a token decodes to, as llama_token_to_piece(special = true) gives them.
 * Pointer into the vocabulary (valid while it lives), not NUL-terminated. */
const char *lfm2_vocab_piece(const struct lfm2_vocab *v, lfm2_token t, size_t *len);

/* Same contract as lfm2_tokenize() (add_special: BOS when the vocabulary's add_bos is set,
 * EOS when its add_eos is set — llama_tokenize's add_special). text_len < 0: NUL-terminated. */
int32_t lfm2_vocab_tokenize(const struct lfm2_vocab *v, const char *text, int32_t text_len,
                            lfm2_token *tokens, int32_t n_max, bool add_special,
                            bool parse_special);
/* Same contract as lfm2_token_to_piece(). */
int32_t lfm2_vocab_token_to_piece(const struct lfm2_vocab *v, lfm2_token t, char *buf,
                                  int32_t len, bool special);
/* Same contract as lfm2_detok_push(). */
int32_t lfm2_vocab_detok_push(const struct lfm2_vocab *v, struct lfm2_detok *d, lfm2_token t,
                              char *out, int32_t cap);

#endif /* LFM2_VOCAB_H */
