/* config.c — the image settings of a Hugging Face LFM2-VL processor config
 * (preprocessor_config.json / processor_config.json) read into lfm2_vision_params.
 *
 * Why a reader of our own and not json-glib: the vision library depends on the engine and
 * FFmpeg only (no GLib), and both the `lfm2` CLI (no GLib either) and the elements need the
 * same rules — which fields, which values are errors, what a directory means — so one small
 * strict reader here serves both. It parses the whole file as JSON (RFC 8259: objects,
 * arrays, strings with escapes, numbers, literals; nesting at most 64 deep), so a truncated
 * or garbled file is an error with its line, and only then looks at the fields. Numbers are
 * parsed by hand, independent of the C locale (a GStreamer application may run under a
 * locale whose decimal point is a comma).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vision-impl.h"

#define MAX_CONFIG_BYTES (4u << 20)
#define MAX_DEPTH 64

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_OBJ, J_ARR };

struct jval {
    enum jtype type;
    bool b;
    double num;
    bool integral;          /* written without fraction or exponent */
    const char *start;      /* the value's text (objects: the '{') */
    size_t len;             /* strings: raw bytes between the quotes */
};

struct jparser {
    const char *p, *begin, *end, *path;
    int depth;
};

static int jfail(struct jparser *j, const char *what)
{
    int line = 1;
    for (const char *c = j->begin; c < j->p && c < j->end; c++)
        line += *c == '\n';
    return lfm2_set_error("%s: line %d: invalid JSON (%s)", j->path, line, what);
}

static void skip_ws(struct jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int parse_value(struct jparser *j, struct jval *v);

static int parse_string(struct jparser *j, struct jval *v)
{
    j->p++;   /* the opening quote */
    v->type = J_STR;
    v->start = j->p;
    while (j->p < j->end && *j->p != '"') {
        const unsigned char c = (unsigned char)*j->p;
        if (c < 0x20)
            return jfail(j, "control character in a string");
        if (c == '\\') {
            j->p++;
            if (j->p >= j->end)
                break;
            if (*j->p == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (j->p + k >= j->end || !j->p[k] ||
                        !strchr("0123456789abcdefABCDEF", j->p[k]))
                        return jfail(j, "bad \\u escape");
                j->p += 4;
            } else if (!*j->p || !strchr("\"\\/bfnrt", *j->p)) {
                return jfail(j, "bad escape in a string");
            }
        }
        j->p++;
    }
    if (j->p >= j->end)
        return jfail(j, "unterminated string");
    v->len = (size_t)(j->p - v->start);
    j->p++;
    return 0;
}

/* RFC 8259 number grammar, value accumulated without strtod (locale-free) */
static int parse_number(struct jparser *j, struct jval *v)
{
    const char *s = j->p;
    double m = 0;
    int exp10 = 0;
    bool neg = false;
    v->type = J_NUM;
    v->start = s;
    v->integral = true;
    if (j->p < j->end && *j->p == '-') {
        neg = true;
        j->p++;
    }
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return jfail(j, "bad number");
    if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
        return jfail(j, "leading zero in a number");
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        m = m * 10 + (*j->p++ - '0');
    if (j->p < j->end && *j->p == '.') {
        v->integral = false;
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return jfail(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            m = m * 10 + (*j->p++ - '0');
            exp10--;
        }
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        int e = 0, es = 1;
        v->integral = false;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            es = *j->p++ == '-' ? -1 : 1;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return jfail(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            e = e < 100000 ? e * 10 + (*j->p++ - '0') : (j->p++, e);
        exp10 += es * e;
    }
    v->num = (neg ? -m : m) * pow(10.0, exp10);
    v->len = (size_t)(j->p - s);
    return 0;
}

static int parse_literal(struct jparser *j, struct jval *v, const char *word, enum jtype t,
                         bool b)
{
    const size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return jfail(j, "unexpected character");
    v->type = t;
    v->b = b;
    v->start = j->p;
    j->p += n;
    return 0;
}

/* Objects and arrays are checked here and skipped; the reader walks objects it cares about
 * again with next_member(). */
static int parse_container(struct jparser *j, struct jval *v, char open, char close)
{
    v->type = open == '{' ? J_OBJ : J_ARR;
    v->start = j->p;
    if (++j->depth > MAX_DEPTH)
        return jfail(j, "nested too deeply");
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        struct jval x;
        skip_ws(j);
        if (open == '{') {
            if (j->p >= j->end || *j->p != '"')
                return jfail(j, "expected a member name");
            if (parse_string(j, &x))
                return -1;
            skip_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return jfail(j, "expected ':'");
            j->p++;
        }
        if (parse_value(j, &x))
            return -1;
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return 0;
        }
        return jfail(j, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(struct jparser *j, struct jval *v)
{
    skip_ws(j);
    if (j->p >= j->end)
        return jfail(j, "unexpected end of file");
    switch (*j->p) {
    case '{':
        return parse_container(j, v, '{', '}');
    case '[':
        return parse_container(j, v, '[', ']');
    case '"':
        return parse_string(j, v);
    case 't':
        return parse_literal(j, v, "true", J_BOOL, true);
    case 'f':
        return parse_literal(j, v, "false", J_BOOL, false);
    case 'n':
        return parse_literal(j, v, "null", J_NULL, false);
    default:
        return parse_number(j, v);
    }
}

/* Iterates the members of an already validated object: *it starts at the '{'. Returns 1 with
 * the name (raw) and value, 0 at the end. */
static int next_member(struct jparser *j, const char **it, const char **name, size_t *name_len,
                       struct jval *v)
{
    j->p = *it;
    if (*j->p == '{')
        j->p++;
    skip_ws(j);
    if (*j->p == ',')
        j->p++;
    skip_ws(j);
    if (*j->p == '}')
        return 0;
    struct jval k;
    parse_string(j, &k);
    skip_ws(j);
    j->p++;   /* ':' */
    parse_value(j, v);
    *name = k.start;
    *name_len = k.len;
    *it = j->p;
    return 1;
}

/* ---- the fields ---------------------------------------------------------------------- */

static bool is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

static int bad(const char *path, const char *field, const struct jval *v, const char *need)
{
    const int n = v->type == J_STR ? (int)v->len + 2 : v->len > 0 ? (int)v->len : 5;
    const char *txt = v->type == J_STR ? v->start - 1 : v->start;
    return lfm2_set_error("%s: %s is %.*s; it must be %s", path, field, n > 40 ? 40 : n, txt,
                          need);
}

static int get_int(const char *path, const char *field, const struct jval *v, int lo, int hi,
                   int *out)
{
    char need[64];
    snprintf(need, sizeof need, "an integer from %d to %d", lo, hi);
    if (v->type != J_NUM || !v->integral || v->num < lo || v->num > hi)
        return bad(path, field, v, need);
    *out = (int)v->num;
    return 0;
}

static int get_bool(const char *path, const char *field, const struct jval *v, bool *out)
{
    if (v->type != J_BOOL)
        return bad(path, field, v, "true or false");
    *out = v->b;
    return 0;
}

/* One member of the image processor's settings; unknown names are ignored. */
static int apply_member(const char *path, const char *name, size_t len, const struct jval *v,
                        struct lfm2_vision_params *p, struct lfm2_vision_config *info)
{
    if (v->type == J_NULL)   /* None in Python: the processor's default */
        return 0;
    unsigned bit = 0;
    int x = 0;
    if (is(name, len, "do_image_splitting")) {
        if (get_bool(path, "do_image_splitting", v, &p->do_tiling))
            return -1;
        bit = LFM2_VISION_CFG_DO_TILING;
    } else if (is(name, len, "use_thumbnail")) {
        if (get_bool(path, "use_thumbnail", v, &p->use_thumbnail))
            return -1;
        bit = LFM2_VISION_CFG_USE_THUMBNAIL;
    } else if (is(name, len, "min_tiles")) {
        if (get_int(path, "min_tiles", v, 1, 100, &p->min_tiles))
            return -1;
        bit = LFM2_VISION_CFG_MIN_TILES;
    } else if (is(name, len, "max_tiles")) {
        if (get_int(path, "max_tiles", v, 1, 100, &p->max_tiles))
            return -1;
        bit = LFM2_VISION_CFG_MAX_TILES;
    } else if (is(name, len, "max_pixels_tolerance")) {
        if (v->type != J_NUM || !(v->num > 0) || !(v->num < 1e6))
            return bad(path, "max_pixels_tolerance", v, "a positive number");
        p->max_pixels_tolerance = (float)v->num;
        bit = LFM2_VISION_CFG_TOLERANCE;
    } else if (is(name, len, "min_image_tokens")) {
        if (get_int(path, "min_image_tokens", v, 1, 16384, &p->min_image_tokens))
            return -1;
        bit = LFM2_VISION_CFG_MIN_IMAGE_TOKENS;
    } else if (is(name, len, "max_image_tokens")) {
        if (get_int(path, "max_image_tokens", v, 1, 16384, &p->max_image_tokens))
            return -1;
        bit = LFM2_VISION_CFG_MAX_IMAGE_TOKENS;
    } else if (is(name, len, "resample")) {
        /* Pillow's codes: 2 BILINEAR, 3 BICUBIC (0 NEAREST, 1 LANCZOS, 4 BOX, 5 HAMMING are
         * not what LFM2-VL was trained with and are refused) */
        if (v->type != J_NUM || !v->integral || (v->num != 2 && v->num != 3))
            return bad(path, "resample", v, "2 (bilinear) or 3 (bicubic)");
        p->resample = (enum lfm2_vision_resample)(int)v->num;
        bit = LFM2_VISION_CFG_RESAMPLE;
    } else if (is(name, len, "tile_size")) {
        if (get_int(path, "tile_size", v, 1, 1 << 20, &x))
            return -1;
        if (x != LFM2_VISION_TILE_SIZE)
            return bad(path, "tile_size", v, "512 (the only tile size LFM2-VL uses)");
    } else if (is(name, len, "encoder_patch_size")) {
        if (get_int(path, "encoder_patch_size", v, 1, 1024, &info->encoder_patch_size))
            return -1;
    } else if (is(name, len, "downsample_factor")) {
        if (get_int(path, "downsample_factor", v, 1, 64, &info->downsample_factor))
            return -1;
    }
    info->fields |= bit;
    return 0;
}

/* Reads one file: the members at the top level, then those under "image_processor" (the
 * nested layout of newer processor_config.json files), which take precedence. */
static int read_file(const char *path, struct lfm2_vision_params *p,
                     struct lfm2_vision_config *info)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return lfm2_set_error("%s: %s", path, strerror(errno));
    char *buf = malloc(MAX_CONFIG_BYTES + 1);
    if (!buf) {
        fclose(f);
        return lfm2_set_error("%s: out of memory", path);
    }
    const size_t n = fread(buf, 1, MAX_CONFIG_BYTES + 1, f);
    const bool err = ferror(f);
    fclose(f);
    int rc = -1;
    if (err) {
        lfm2_set_error("%s: read error", path);
        goto out;
    }
    if (n > MAX_CONFIG_BYTES) {
        lfm2_set_error("%s: larger than %u bytes; not a processor config", path, MAX_CONFIG_BYTES);
        goto out;
    }
    struct jparser j = { buf, buf, buf + n, path, 0 };
    struct jval root;
    if (n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        j.p += 3;   /* a UTF-8 byte order mark */
    if (parse_value(&j, &root))
        goto out;
    skip_ws(&j);
    if (j.p != j.end) {
        jfail(&j, "text after the value");
        goto out;
    }
    if (root.type != J_OBJ) {
        lfm2_set_error("%s: not a processor config (the JSON value is not an object)", path);
        goto out;
    }
    const char *it = root.start, *name, *nested = NULL;
    size_t len;
    struct jval v;
    while (next_member(&j, &it, &name, &len, &v)) {
        if (is(name, len, "image_processor") && v.type == J_OBJ)
            nested = v.start;
        else if (apply_member(path, name, len, &v, p, info))
            goto out;
    }
    if (nested) {
        it = nested;
        while (next_member(&j, &it, &name, &len, &v))
            if (apply_member(path, name, len, &v, p, info))
                goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

int lfm2_vision_read_config(const char *path, struct lfm2_vision_params *params,
                            struct lfm2_vision_config *info)
{
    struct lfm2_vision_config local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (!path || !params)
        return lfm2_set_error("lfm2_vision_read_config: no path or parameters");
    struct stat st;
    if (stat(path, &st) != 0)
        return lfm2_set_error("%s: %s", path, strerror(errno));
    /* work on a copy: a bad file leaves the caller's parameters alone */
    struct lfm2_vision_params p = *params;
    if (S_ISDIR(st.st_mode)) {
        /* a model directory: the two files split the settings between them (the image
         * processor's in preprocessor_config.json, the processor's in processor_config.json);
         * processor_config.json is read second and wins where both have a field */
        static const char *const names[] = { "preprocessor_config.json", "processor_config.json" };
        int found = 0;
        for (int i = 0; i < 2; i++) {
            const size_t n = strlen(path) + strlen(names[i]) + 2;
            char *file = malloc(n);
            if (!file)
                return lfm2_set_error("out of memory");
            snprintf(file, n, "%s/%s", path, names[i]);
            if (access(file, F_OK) == 0) {
                found++;
                if (read_file(file, &p, info)) {
                    free(file);
                    return -1;
                }
            }
            free(file);
        }
        if (!found)
            return lfm2_set_error("%s: a directory without preprocessor_config.json or "
                                  "processor_config.json", path);
    } else if (read_file(path, &p, info)) {
        return -1;
    }
    if (info->fields & LFM2_VISION_CFG_MIN_TILES && info->fields & LFM2_VISION_CFG_MAX_TILES &&
        p.do_tiling && p.min_tiles > p.max_tiles)
        return lfm2_set_error("%s: min_tiles %d is larger than max_tiles %d", path, p.min_tiles,
                              p.max_tiles);
    if (info->fields & LFM2_VISION_CFG_MIN_IMAGE_TOKENS &&
        info->fields & LFM2_VISION_CFG_MAX_IMAGE_TOKENS && p.min_image_tokens > p.max_image_tokens)
        return lfm2_set_error("%s: min_image_tokens %d is larger than max_image_tokens %d", path,
                              p.min_image_tokens, p.max_image_tokens);
    *params = p;
    return 0;
}

int lfm2_vision_check_config(const lfm2_vision *v, const char *path,
                             const struct lfm2_vision_config *info)
{
    if (info->encoder_patch_size && info->encoder_patch_size != v->hp.patch_size)
        return lfm2_set_error("%s: encoder_patch_size is %d but the mmproj %s has patch size %d",
                              path, info->encoder_patch_size, v->path, v->hp.patch_size);
    if (info->downsample_factor && info->downsample_factor != v->hp.merge)
        return lfm2_set_error("%s: downsample_factor is %d but the mmproj %s merges %d×%d "
                              "patches", path, info->downsample_factor, v->path, v->hp.merge,
                              v->hp.merge);
    return 0;
}
