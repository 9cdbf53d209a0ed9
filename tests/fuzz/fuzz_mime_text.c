/*
 * fuzz_mime_text.c — decoded text for search.
 *
 * The input as a message: parse, extract the text with the default cap and
 * with a small one; both must be valid UTF-8 without NUL bytes within their
 * cap, and the capped text must be a prefix of the full one (the cap only
 * cuts, on a character boundary).
 * The input as a header value: mime_header_decode must give valid UTF-8.
 * The input as search text: folding keeps valid UTF-8 valid, a text always
 * matches itself and its own folding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_mime_text: %s\n", what);
        abort();
    }
}

static void check_text(const char *s, size_t len, const char *what)
{
    check(s != NULL, what);
    check(strlen(s) == len, "a NUL byte in the text");
    check(mime_utf8_valid(s, len), "the text is not valid UTF-8");
}

static void fuzz_extract(const char *s, size_t size)
{
    struct mime_message *m = mime_parse(s, size);
    if (!m)
        return;
    struct mime_text *full = mime_text_extract(m, s, size, MIME_TEXT_CAP);
    check(full != NULL, "mime_text_extract failed");
    check_text(full->header, full->header_len, "no header text");
    check_text(full->body, full->body_len, "no body text");
    check(full->header_len + full->body_len <= MIME_TEXT_CAP, "over the cap");

    size_t total = full->header_len + full->body_len;
    size_t cap = total / 2 + size % 7;
    struct mime_text *cut = mime_text_extract(m, s, size, cap);
    check(cut != NULL, "mime_text_extract failed with a small cap");
    check_text(cut->header, cut->header_len, "no header text");
    check_text(cut->body, cut->body_len, "no body text");
    check(cut->header_len + cut->body_len <= cap, "over the small cap");
    check(cut->truncated == (cap < total) || full->truncated, "truncated flag wrong");
    check(cut->header_len <= full->header_len
          && memcmp(cut->header, full->header, cut->header_len) == 0,
          "capped header is not a prefix");
    check(cut->body_len <= full->body_len && memcmp(cut->body, full->body, cut->body_len) == 0,
          "capped body is not a prefix");
    check(cut->truncated || (cut->header_len == full->header_len
                             && cut->body_len == full->body_len),
          "text lost without truncation");
    mime_text_free(&cut);
    mime_text_free(&full);
    check(full == NULL, "mime_text_free did not clear");
    mime_free(&m);
}

static void fuzz_words(const char *s, size_t size)
{
    size_t n = 0;
    char *d = mime_header_decode(s, size, &n);
    check_text(d, n, "mime_header_decode failed");
    free(d);
}

static void fuzz_match(const char *s, size_t size)
{
    size_t n = 0;
    char *f = mime_casefold(s, size, &n);
    check(f != NULL && strlen(f) <= n, "mime_casefold failed");
    if (mime_utf8_valid(s, size))
        check(mime_utf8_valid(f, n), "folding broke UTF-8");
    check(mime_search_match(s, size, s, size) == 1, "a text does not match itself");
    if (mime_utf8_valid(s, size))
        check(mime_search_match(s, size, f, n) == 1, "a text does not match its folding");
    size_t half = size / 2;
    check(mime_search_match(s, half, s + half, size - half) >= 0, "match failed");
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    fuzz_extract(s, size);
    fuzz_words(s, size);
    fuzz_match(s, size);
    return 0;
}
