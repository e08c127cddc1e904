/* unicode.c — UTF-8 decoding the way llama.cpp does it, code point classes, GPT-2's byte-level
 * alphabet and llama.cpp's LLAMA3 pre-tokenizer, written over code points without a regex
 * engine. */
#include "unicode.h"

unsigned lfm2_cpt_class(uint32_t cp)
{
    if (cp < 0x80) {
        /* ASCII fast path (the same answers the table gives). */
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
            return LFM2_CPT_LETTER;
        if (cp >= '0' && cp <= '9')
            return LFM2_CPT_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D))
            return LFM2_CPT_WHITESPACE;
        return 0;
    }
    if (cp > 0x10FFFF)
        return 0;
    /* Last run whose start is <= cp (the first run starts at 0). */
    const uint32_t key = cp << 8 | 0xFF;
    size_t lo = 0, hi = lfm2_unicode_n_runs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (lfm2_unicode_runs[mid] <= key)
            lo = mid;
        else
            hi = mid;
    }
    return lfm2_unicode_runs[lo] & 0xFF;
}

uint32_t lfm2_utf8_next(const uint8_t *s, size_t n, size_t *pos)
{
    size_t i = *pos;
    const uint8_t b0 = s[i];
    if (b0 < 0x80) {
        *pos = i + 1;
        return b0;
    }
    /* Continuation byte as a lead, or 0xF8..0xFF: invalid. */
    int len = (b0 & 0xE0) == 0xC0 ? 2 : (b0 & 0xF0) == 0xE0 ? 3 : (b0 & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || (b0 & 0xC0) == 0x80 || i + (size_t)len > n)
        goto invalid;
    uint32_t cp = b0 & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            goto invalid;
        cp = cp << 6 | (s[i + k] & 0x3F);
    }
    /* llama.cpp decodes F4 90.. and F5..F7 sequences but then aborts re-encoding them; we
     * treat them as invalid bytes instead. Overlong forms and surrogates pass, as there. */
    if (cp > 0x10FFFF)
        goto invalid;
    *pos = i + (size_t)len;
    return cp;
invalid:
    *pos = i + 1;
    return LFM2_CPT_REPLACEMENT;
}

int lfm2_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes keep their value, the 68 others
 * (0x00..0x20, 0x7F..0xA0, 0xAD) are numbered from U+0100 in byte order. */
static int byte_is_identity(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

uint32_t lfm2_byte_to_cpt(uint8_t b)
{
    if (byte_is_identity(b))
        return b;
    if (b <= 0x20)
        return 0x100u + b;
    if (b <= 0xA0)
        return 0x100u + 33 + (b - 0x7Fu);
    return 0x100u + 67;   /* 0xAD */
}

int lfm2_cpt_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return byte_is_identity(cp) ? (int)cp : -1;
    if (cp < 0x100 + 33)
        return (int)(cp - 0x100);
    if (cp < 0x100 + 67)
        return (int)(cp - 0x100 - 33 + 0x7F);
    if (cp == 0x100 + 67)
        return 0xAD;
    return -1;
}

size_t lfm2_byte_encode(const uint8_t *bytes, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t cp = lfm2_byte_to_cpt(bytes[i]);
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else {   /* every code point of the alphabet is below U+0800 */
            out[o++] = (char)(0xC0 | cp >> 6);
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return o;
}

static uint32_t ascii_lower(uint32_t c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* Mirrors unicode_regex_split_custom_llama3: one branch per alternative of the regex, tried in
 * order at each position; positions past the end read as "no code point, no class". */
size_t lfm2_pretok_llama3(const uint32_t *cpts, const uint8_t *cls, size_t n, uint32_t *lens)
{
    const unsigned L = LFM2_CPT_LETTER, N = LFM2_CPT_NUMBER, W = LFM2_CPT_WHITESPACE;
#define CLS(p) ((p) < n ? cls[p] : 0u)
#define IS_RN(c) ((c) == '\r' || (c) == '\n')
    size_t count = 0, prev_end = 0, pos = 0;
#define EMIT(end) do { size_t e_ = (end); if (e_ > prev_end) lens[count++] = (uint32_t)(e_ - prev_end); prev_end = e_; pos = e_; } while (0)

    while (pos < n) {
        const uint32_t c = cpts[pos];
        const unsigned f = cls[pos];

        /* (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]) */
        if (c == '\'' && pos + 1 < n) {
            const uint32_t c1 = ascii_lower(cpts[pos + 1]);
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
                EMIT(pos + 2);
                continue;
            }
            if (pos + 2 < n) {
                const uint32_t c2 = ascii_lower(cpts[pos + 2]);
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                    EMIT(pos + 3);
                    continue;
                }
            }
        }

        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(IS_RN(c) || (f & N)) && ((f & L) || (CLS(pos + 1) & L))) {
            size_t p = pos + 1;
            while (CLS(p) & L)
                p++;
            EMIT(p);
            continue;
        }

        /* \p{N}{1,3} */
        if (f & N) {
            size_t p = pos, ini = pos;
            while (CLS(p) & N) {
                if (++p - ini >= 3) {
                    EMIT(p);
                    ini = p;
                }
            }
            EMIT(p);
            continue;
        }

        /*  ?[^\s\p{L}\p{N}]+[\r\n]*   (a space at the very end also lands here, alone) */
        const int sp = (c == ' ');
        const unsigned f2 = sp ? CLS(pos + 1) : f;
        if (!(f2 & (W | L | N))) {
            size_t p = pos + (size_t)sp;
            while (p < n && !(cls[p] & (W | L | N)))
                p++;
            while (p < n && IS_RN(cpts[p]))
                p++;
            EMIT(p);
            continue;
        }

        /* \s*[\r\n]+ | \s+(?!\S) | \s+ */
        size_t nws = 0, last_rn = 0;
        while (CLS(pos + nws) & W) {
            if (IS_RN(cpts[pos + nws]))
                last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) {
            EMIT(last_rn);
            continue;
        }
        if (nws > 1 && pos + nws < n) {
            EMIT(pos + nws - 1);
            continue;
        }
        if (nws > 0) {
            EMIT(pos + nws);
            continue;
        }

        EMIT(pos + 1);   /* no alternative matched: a piece of its own */
    }
#undef EMIT
#undef IS_RN
#undef CLS
    return count;
}
