/* fuzz-tensors — the plugin's `other/tensors` code (plugins/gstlfm2tensors.c): caps parsing
 * (gst_lfm2_tensors_config_from_caps) on structures with any field values, the dimension
 * strings, the 128-byte flexible headers, and the embeddings contract
 * (gst_lfm2_embd_view_map) on buffers of any memories — what lfm2text does with every
 * `other/tensors` caps event and buffer.
 *
 * Input: two flag bytes, then the fields they ask for (num_tensors, types, dimensions,
 * framerate, embedding-length, model-id), n_vocab, then up to 3 memories (16-bit length and
 * bytes each). Flags, byte 0: bits 0-2 format (absent, static, flexible, sparse, a string from
 * the input), bit 3 num_tensors, bit 4 types, bit 5 dimensions as a string, bit 6 dimensions
 * as an int, bit 7 framerate. Byte 1: bit 0 framerate of the wrong type, bit 1
 * embedding-length, bit 2 model-id, bit 3 map the buffer as flexible whatever the caps say,
 * bits 4-5 the memory count, bit 6 memories at an odd address.
 *
 * Checked: accepted caps survive config → caps → config unchanged; a dimension string that
 * parses prints back to the same shape; a header that parses is written back identically; a
 * mapped view's rows and layout lie inside their memories and obey the contract (n_rows
 * negative layout entries, ids below n_vocab); every refusal has a message; GLib criticals
 * and warnings abort (a g_return_if_fail reached from valid API use is a bug). */
#include "fuzz-common.h"
#include "gstlfm2tensors.h"

/* GLib/GStreamer warnings and criticals are findings: abort (libFuzzer then saves the input;
 * GLib's own fatal path raises SIGTRAP, which it does not catch). */
static void log_handler(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer d)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) {
        fprintf(stderr, "%s: %s\n", domain ? domain : "", msg);
        abort();
    }
    g_log_default_handler(domain, level, msg, d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    gst_init(argc, argv);
    g_log_set_default_handler(log_handler, NULL);
    return 0;
}

static gint32 fuzz_i32(fuzz_input *in)
{
    return (gint32)fuzz_u32(in);
}

/* A string field value: GStreamer requires UTF-8 there (caps from the wire are). */
static gchar *caps_str(fuzz_input *in, gsize max)
{
    gsize n;
    gchar *raw = fuzz_str(in, max, &n), *s = g_utf8_make_valid(raw, -1);
    free(raw);
    return s;
}

static void check_config_round_trip(const GstLfm2TensorsConfig *c)
{
    GstCaps *caps = gst_lfm2_tensors_caps_from_config(c);
    GstLfm2TensorsConfig c2;
    GError *err = NULL;

    FUZZ_ASSERT(caps != NULL, "no caps for an accepted config");
    FUZZ_ASSERT(gst_lfm2_tensors_config_from_caps(caps, &c2, &err), "round trip refused: %s",
                err->message);
    FUZZ_ASSERT(c2.format == c->format && c2.num_tensors == c->num_tensors &&
                    c2.rate_n == c->rate_n && c2.rate_d == c->rate_d &&
                    c2.embedding_length == c->embedding_length &&
                    !strcmp(c2.model_id, c->model_id),
                "round trip changed the config");
    for (guint i = 0; i < c->num_tensors; i++)
        FUZZ_ASSERT(gst_lfm2_tensor_info_is_equal(&c->info[i], &c2.info[i]),
                    "round trip changed tensor %u", i);
    gst_caps_unref(caps);
}

static void check_header(const guint8 *data, gsize size)
{
    GstLfm2TensorInfo info, again;
    GError *err = NULL;
    gsize payload = 0;

    if (!gst_lfm2_tensor_header_parse(data, size, &info, &payload, &err)) {
        FUZZ_ASSERT(err && err->message[0], "header refused without a message");
        g_error_free(err);
        return;
    }
    FUZZ_ASSERT(payload == gst_lfm2_tensor_info_size(&info) && payload > 0 &&
                    payload <= size - GST_LFM2_TENSOR_HEADER_SIZE,
                "payload %zu in %zu bytes", payload, size);
    guint8 header[GST_LFM2_TENSOR_HEADER_SIZE];
    guint32 w19;
    memcpy(&w19, data + 19 * 4, 4);
    gst_lfm2_tensor_header_write(&info, (GstLfm2TensorFormat)w19, GST_LFM2_TENSOR_MEDIA_TENSOR,
                                 header);
    /* the written header parses to the same tensor (parse reads only the 128 header bytes;
     * the size says the payload follows) */
    FUZZ_ASSERT(gst_lfm2_tensor_header_parse(header, sizeof header + payload, &again, NULL, NULL),
                "a written header does not parse");
    FUZZ_ASSERT(again.rank == info.rank && gst_lfm2_tensor_info_is_equal(&info, &again),
                "header → info → header changed the tensor");
}

static void check_dims(const gchar *s)
{
    GstLfm2TensorInfo a = { 0 }, b = { 0 };
    GError *err = NULL;

    if (!gst_lfm2_tensor_dims_parse(s, &a, &err)) {
        FUZZ_ASSERT(err && err->message[0], "dimensions refused without a message");
        g_error_free(err);
        return;
    }
    gchar *back = gst_lfm2_tensor_dims_to_string(&a);
    FUZZ_ASSERT(gst_lfm2_tensor_dims_parse(back, &b, NULL), "\"%s\" does not parse", back);
    FUZZ_ASSERT(gst_lfm2_tensor_info_is_equal(&a, &b), "\"%s\" → \"%s\" changed", s, back);
    g_free(back);
}

static void check_view(const GstLfm2EmbdView *v, GstBuffer *buf, gint n_vocab)
{
    FUZZ_ASSERT(v->n_embd > 0 && v->n_rows > 0 && v->embd != NULL, "view %d×%d", v->n_embd,
                v->n_rows);
    const guint64 rows_bytes = (guint64)v->n_embd * (guint64)v->n_rows * 4;
    FUZZ_ASSERT(rows_bytes <= gst_buffer_get_size(buf), "rows of %" G_GUINT64_FORMAT
                " bytes in a buffer of %zu", rows_bytes, gst_buffer_get_size(buf));
    /* the first and the last float of the rows are readable */
    volatile gfloat first = v->embd[0], last = v->embd[(gsize)v->n_embd * v->n_rows - 1];
    (void)first;
    (void)last;
    if (v->n_layout > 0) {
        gint neg = 0;
        for (gint i = 0; i < v->n_layout; i++) {
            neg += v->layout[i] < 0;
            FUZZ_ASSERT(n_vocab <= 0 || v->layout[i] < n_vocab, "layout id %d ≥ %d",
                        v->layout[i], n_vocab);
        }
        FUZZ_ASSERT(neg == v->n_rows, "%d embedding slots for %d rows", neg, v->n_rows);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const formats[4] = { NULL, "static", "flexible", "sparse" };
    fuzz_input in = { data, size };
    const uint8_t f0 = fuzz_u8(&in), f1 = fuzz_u8(&in);
    GstStructure *s = gst_structure_new_empty(GST_LFM2_TENSORS_MEDIA_TYPE);
    gchar *str;

    const guint fmt = f0 & 7;
    if (fmt >= 1 && fmt <= 3) {
        gst_structure_set(s, "format", G_TYPE_STRING, formats[fmt], NULL);
    } else if (fmt >= 4) {
        str = caps_str(&in, 16);
        gst_structure_set(s, "format", G_TYPE_STRING, str, NULL);
        g_free(str);
    }
    if (f0 & 8)
        gst_structure_set(s, "num_tensors", G_TYPE_INT, (gint)fuzz_range(&in, -2, 20), NULL);
    if (f0 & 16) {
        str = caps_str(&in, 64);
        gst_structure_set(s, "types", G_TYPE_STRING, str, NULL);
        g_free(str);
    }
    if (f0 & 32) {
        str = caps_str(&in, 96);
        gst_structure_set(s, "dimensions", G_TYPE_STRING, str, NULL);
        check_dims(str);
        g_free(str);
    } else if (f0 & 64) {
        gst_structure_set(s, "dimensions", G_TYPE_INT, fuzz_i32(&in), NULL);
    }
    if (f0 & 128) {
        if (f1 & 1) {
            gst_structure_set(s, "framerate", G_TYPE_STRING, "30/1", NULL);
        } else {
            gint n = fuzz_i32(&in), d = fuzz_i32(&in);
            /* what a GstFraction can hold */
            gst_structure_set(s, "framerate", GST_TYPE_FRACTION, MAX(n, -G_MAXINT),
                              d == 0 ? 1 : MAX(d, -G_MAXINT), NULL);
        }
    }
    if (f1 & 2)
        gst_structure_set(s, "embedding-length", G_TYPE_INT, fuzz_i32(&in), NULL);
    if (f1 & 4) {
        str = caps_str(&in, 200);
        gst_structure_set(s, "model-id", G_TYPE_STRING, str, NULL);
        g_free(str);
    }
    const gint n_vocab = (gint)fuzz_u16(&in);

    GstCaps *caps = gst_caps_new_full(s, NULL);
    GstLfm2TensorsConfig config;
    GError *err = NULL;
    const gboolean caps_ok = gst_lfm2_tensors_config_from_caps(caps, &config, &err);
    if (caps_ok) {
        check_config_round_trip(&config);
    } else {
        FUZZ_ASSERT(err && err->message[0], "caps refused without a message");
        g_clear_error(&err);
    }
    gst_caps_unref(caps);
    if (!caps_ok || (f1 & 8))
        gst_lfm2_tensors_config_init(&config, GST_LFM2_TENSOR_FORMAT_FLEXIBLE);

    /* the buffer */
    GstBuffer *buf = gst_buffer_new();
    const guint n_mem = (f1 >> 4) & 3;
    const gsize odd = (f1 & 64) ? 1 : 0;
    for (guint i = 0; i < n_mem; i++) {
        gsize len = (gsize)fuzz_range(&in, 0, 4096);
        if (len > in.n)
            len = in.n;
        guint8 *copy = g_malloc(len + odd + 1);
        memcpy(copy + odd, in.p, len);
        in.p += len;
        in.n -= len;
        check_header(copy + odd, len);
        gst_buffer_append_memory(buf, gst_memory_new_wrapped(0, copy, len + odd, odd, len, copy,
                                                             g_free));
    }
    GstLfm2EmbdView view;
    if (gst_lfm2_embd_view_map(&view, buf, &config, n_vocab, &err)) {
        check_view(&view, buf, n_vocab);
        gst_lfm2_embd_view_unmap(&view);
    } else {
        FUZZ_ASSERT(err && err->message[0], "buffer refused without a message");
        g_clear_error(&err);
    }
    gst_buffer_unref(buf);
    return 0;
}
