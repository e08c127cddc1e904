/* fuzz-chat — the LFM2 chat layout (lfm2_chat_apply): any roles, contents, tool lists, and
 * buffer sizes; then the rendering tokenized with special-token parsing, as lfm2text does.
 *
 * Input: byte 0: message count (low 3 bits, 0..7), bit 3 add_generation_prompt, bit 4 a tool
 * list, bit 5 one message without a role; then per message a role byte (system, user,
 * assistant, tool, or — for 4..7 — a string from the input) and its content (length byte(s)
 * then bytes; cut at the first NUL, as a C string is); then the tool list; then the capacity
 * of a deliberately short buffer.
 *
 * Checked: the size protocol (ask with NULL, write with exactly that, refuse one byte less
 * with the same answer and a terminated prefix), every content appears verbatim, a bad call
 * (no role, a tool list that is not a JSON array) fails with a message, and the rendering
 * tokenizes with at least one <|im_start|> per turn. */
#include "fuzz-common.h"

static lfm2_model *model;
static lfm2_token im_start;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    model = fuzz_load_model("text/tiny-q4_0/lfm2-tiny-q4_0.gguf");
    im_start = lfm2_token_lookup(model, "<|im_start|>");
    FUZZ_ASSERT(im_start >= 0, "<|im_start|> is not in the vocabulary");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const roles[4] = { "system", "user", "assistant", "tool" };
    fuzz_input in = { data, size };
    const uint8_t flags = fuzz_u8(&in);
    const size_t n_msgs = flags & 7;
    const bool gen_prompt = flags & 8, with_tools = flags & 16, drop_role = flags & 32;
    struct lfm2_chat_message msgs[8];
    char *owned[17] = { 0 };
    int n_owned = 0;

    for (size_t i = 0; i < n_msgs; i++) {
        const uint8_t r = fuzz_u8(&in);
        if (r >= 4 && r < 8)
            msgs[i].role = owned[n_owned++] = fuzz_str(&in, 16, NULL);
        else
            msgs[i].role = roles[r % 4];
        msgs[i].content = owned[n_owned++] = fuzz_str(&in, 200, NULL);
    }
    const bool bad_role = drop_role && n_msgs > 0;
    if (bad_role)
        msgs[n_msgs - 1].role = NULL;
    char *tools = with_tools ? (owned[n_owned++] = fuzz_str(&in, 200, NULL)) : NULL;
    const int32_t short_cap = (int32_t)fuzz_u8(&in);

    lfm2_clear_error();
    int32_t need = lfm2_chat_apply(msgs, n_msgs, tools, gen_prompt, NULL, 0);
    if (need == INT32_MIN) {
        fuzz_check_error("lfm2_chat_apply", "lfm2_chat_apply");
        goto done;
    }
    FUZZ_ASSERT(!bad_role, "a message without a role was accepted");
    FUZZ_ASSERT(need < 0, "a size query returned %d", need);
    need = -need;
    char *buf = malloc((size_t)need);
    if (!buf)
        abort();
    int32_t n = lfm2_chat_apply(msgs, n_msgs, tools, gen_prompt, buf, need);
    FUZZ_ASSERT(n == need - 1 && buf[n] == '\0' && strlen(buf) == (size_t)n,
                "asked for %d bytes, wrote %d", need, n);
    for (size_t i = 0; i < n_msgs; i++)
        FUZZ_ASSERT(strstr(buf, msgs[i].content) != NULL, "message %zu is missing", i);
    if (short_cap < need) {
        char *small = malloc((size_t)short_cap + 1);
        if (!small)
            abort();
        small[short_cap] = 'x';
        int32_t r = lfm2_chat_apply(msgs, n_msgs, tools, gen_prompt, small, short_cap);
        FUZZ_ASSERT(r == -need, "capacity %d: %d, expected %d", short_cap, r, -need);
        FUZZ_ASSERT(small[short_cap] == 'x', "wrote past a capacity of %d", short_cap);
        if (short_cap > 0)
            FUZZ_ASSERT(memchr(small, 0, (size_t)short_cap) != NULL, "prefix not terminated");
        free(small);
    }

    /* as the generating elements do: the rendering with control tokens parsed */
    int32_t nt = lfm2_tokenize(model, buf, n, NULL, 0, true, true);
    FUZZ_ASSERT(nt != INT32_MIN, "tokenize: %s", lfm2_last_error());
    nt = nt < 0 ? -nt : nt;
    lfm2_token *ids = malloc(((size_t)nt + 1) * sizeof *ids);
    if (!ids)
        abort();
    FUZZ_ASSERT(lfm2_tokenize(model, buf, n, ids, nt, true, true) == nt, "tokenize");
    size_t turns = 0;
    for (int32_t i = 0; i < nt; i++)
        turns += ids[i] == im_start;
    FUZZ_ASSERT(turns >= n_msgs + (gen_prompt ? 1 : 0), "%zu <|im_start|> for %zu messages",
                turns, n_msgs);
    free(ids);
    free(buf);
done:
    for (int i = 0; i < n_owned; i++)
        free(owned[i]);
    return 0;
}
