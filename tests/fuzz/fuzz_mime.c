/*
 * fuzz_mime.c — the MIME parser and its stored form.
 *
 * The input as a message: parse, encode, decode, encode again; both encodings
 * must be equal (the decoder accepts every tree the parser makes and loses
 * nothing), and a strict prefix of an encoding must be rejected.
 * The input as a stored encoding: mime_decode must not crash, and a tree it
 * accepts must encode to bytes that decode to the same encoding again.
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
        fprintf(stderr, "fuzz_mime: %s\n", what);
        abort();
    }
}

/* Encodes m, decodes that, encodes again: the two encodings are equal.
 * Returns the first encoding (caller frees). */
static char *roundtrip(const struct mime_message *m, size_t *len)
{
    char *enc = mime_encode(m, len);
    check(enc != NULL, "mime_encode failed");
    struct mime_message *d = mime_decode(enc, *len);
    check(d != NULL, "mime_decode rejected an encoding of mime_encode");
    size_t len2 = 0;
    char *enc2 = mime_encode(d, &len2);
    check(enc2 != NULL, "mime_encode of a decoded tree failed");
    check(len2 == *len && memcmp(enc, enc2, *len) == 0, "encodings differ after a round trip");
    free(enc2);
    mime_free(&d);
    return enc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;

    struct mime_message *m = mime_parse(s, size);
    if (m) {
        check(m->size == size, "size is not the input length");
        check(m->n_parts >= 1 && m->n_parts <= MIME_MAX_PARTS, "n_parts out of range");
        size_t len = 0;
        char *enc = roundtrip(m, &len);
        check(mime_decode(enc, size % len) == NULL, "a strict prefix decoded");
        free(enc);
        mime_free(&m);
    }

    struct mime_message *d = mime_decode(s, size);
    if (d) {
        size_t len = 0;
        free(roundtrip(d, &len));
        mime_free(&d);
    }

    /* Header lookup on the same bytes, up to the first empty line. */
    char *v = mime_header_get(s, 0, size, "content-type");
    free(v);
    return 0;
}
