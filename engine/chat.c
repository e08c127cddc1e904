/* chat.c — the LFM2 chat layout (ChatML with LFM2's tool markers).
 *
 * Without tools this is exactly what llama.cpp's llama_chat_apply_template renders for the LFM2
 * template (it recognises ChatML by "<|im_start|>" and does not run the Jinja text):
 *     <|im_start|>{role}\n{content}<|im_end|>\n ... [<|im_start|>assistant\n]
 * with no BOS (tokenize with add_bos). Tools and tool results follow the LFM2 Jinja template
 * (llama.cpp models/templates/llama-cpp-lfm2.jinja): the tool list joins the system prompt as
 *     {system}\nList of tools: <|tool_list_start|>[...]<|tool_list_end|>
 * (a system turn is created for it when there is none), and every "tool" turn's content is
 * wrapped in <|tool_response_start|>...<|tool_response_end|>.
 */
#include <stdint.h>
#include <string.h>

#include "internal.h"

struct out {
    char *buf;
    size_t cap;   /* bytes of buf usable for text (one more is kept for the NUL) */
    size_t n;     /* full length, even past cap */
};

static void put(struct out *o, const char *s, size_t len)
{
    if (o->n < o->cap) {
        const size_t k = len < o->cap - o->n ? len : o->cap - o->n;
        memcpy(o->buf + o->n, s, k);
    }
    o->n += len;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int32_t lfm2_chat_apply(const struct lfm2_chat_message *msgs, size_t n_msgs,
                        const char *tools_json, bool add_generation_prompt,
                        char *buf, int32_t len)
{
    if ((n_msgs > 0 && !msgs) || len < 0 || (len > 0 && !buf))
        return lfm2_set_error("lfm2_chat_apply: invalid arguments"), INT32_MIN;
    for (size_t i = 0; i < n_msgs; i++)
        if (!msgs[i].role)
            return lfm2_set_error("lfm2_chat_apply: message %zu has no role", i), INT32_MIN;

    /* The tool list as given (a JSON array), without surrounding whitespace; "[]" = no tools,
     * as an empty list is false in the template. */
    const char *tools = NULL;
    size_t tools_len = 0;
    if (tools_json) {
        const char *a = tools_json, *b = tools_json + strlen(tools_json);
        while (a < b && is_space(*a))
            a++;
        while (b > a && is_space(b[-1]))
            b--;
        if (b - a < 2 || a[0] != '[' || b[-1] != ']')
            return lfm2_set_error("lfm2_chat_apply: tools_json is not a JSON array"), INT32_MIN;
        const char *c = a + 1;
        while (c < b - 1 && is_space(*c))
            c++;
        if (c < b - 1) {
            tools = a;
            tools_len = (size_t)(b - a);
        }
    }

    struct out o = {buf, len > 0 ? (size_t)len - 1 : 0, 0};
    size_t first = 0;
    if (tools) {
        const char *sys = NULL;
        if (n_msgs > 0 && strcmp(msgs[0].role, "system") == 0) {
            sys = msgs[0].content;
            first = 1;
        }
        puts_(&o, "<|im_start|>system\n");
        if (sys && *sys) {
            puts_(&o, sys);
            puts_(&o, "\n");
        }
        puts_(&o, "List of tools: <|tool_list_start|>");
        put(&o, tools, tools_len);
        puts_(&o, "<|tool_list_end|><|im_end|>\n");
    }
    for (size_t i = first; i < n_msgs; i++) {
        const char *content = msgs[i].content ? msgs[i].content : "";
        const bool tool = strcmp(msgs[i].role, "tool") == 0;
        puts_(&o, "<|im_start|>");
        puts_(&o, msgs[i].role);
        puts_(&o, "\n");
        if (tool)
            puts_(&o, "<|tool_response_start|>");
        puts_(&o, content);
        if (tool)
            puts_(&o, "<|tool_response_end|>");
        puts_(&o, "<|im_end|>\n");
    }
    if (add_generation_prompt)
        puts_(&o, "<|im_start|>assistant\n");

    if (o.n >= (size_t)INT32_MAX)
        return lfm2_set_error("lfm2_chat_apply: the conversation is longer than 2 GiB"), INT32_MIN;
    if (o.n >= (size_t)len) {
        if (len > 0)
            buf[o.cap] = 0;   /* a terminated prefix, for callers that print it anyway */
        return -(int32_t)(o.n + 1);   /* capacity needed, NUL included */
    }
    buf[o.n] = 0;
    return (int32_t)o.n;
}
