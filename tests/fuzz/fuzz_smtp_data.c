/*
 * The DATA decoder against any bytes. Properties checked:
 *  - the result does not depend on how the input is split into reads;
 *  - a message that ended without a bare CR or LF, stuffed again and
 *    decoded again, gives the same message (nothing lost, nothing
 *    invented). Not the bytes consumed: RFC 5321 §4.5.2 drops a leading
 *    dot that was not doubled (".Q" reads as "Q").
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

struct out {
    char *data;
    size_t len, cap;
};

static void collect(void *arg, const char *p, size_t n)
{
    struct out *o = arg;
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->data = realloc(o->data, o->cap);
        if (!o->data)
            abort();
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
}

static size_t run(const char *p, size_t n, size_t step, struct out *o, bool *done, bool *bare)
{
    struct smtp_data_decoder d = { 0 };
    size_t off = 0;
    *done = false;
    while (off < n && !*done) {
        size_t len = n - off < step ? n - off : step;
        off += smtp_data_decode(&d, p + off, len, collect, o, done);
    }
    *bare = d.bare_eol;
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)data[0] % 7 + 1;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;

    struct out whole = { 0 }, split = { 0 };
    bool done1, done2, bare1, bare2;
    size_t c1 = run(p, n, n ? n : 1, &whole, &done1, &bare1);
    size_t c2 = run(p, n, step, &split, &done2, &bare2);
    if (c1 != c2 || done1 != done2 || bare1 != bare2 || whole.len != split.len ||
        (whole.len && memcmp(whole.data, split.data, whole.len) != 0))
        abort();

    if (done1 && !bare1) {
        /* Stuff again: a dot at the start of a line is doubled. */
        struct out again = { 0 };
        bool bol = true;
        for (size_t i = 0; i < whole.len; i++) {
            if (bol && whole.data[i] == '.')
                collect(&again, ".", 1);
            collect(&again, whole.data + i, 1);
            bol = whole.data[i] == '\n';
        }
        collect(&again, ".\r\n", 3);
        struct out back = { 0 };
        bool done3, bare3;
        size_t c3 = run(again.data, again.len, again.len, &back, &done3, &bare3);
        if (c3 != again.len || !done3 || bare3 || back.len != whole.len ||
            (back.len && memcmp(back.data, whole.data, back.len) != 0))
            abort();
        free(again.data);
        free(back.data);
    }
    free(whole.data);
    free(split.data);
    return 0;
}
