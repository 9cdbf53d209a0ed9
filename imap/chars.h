/*
 * Character classes of the IMAP grammar (RFC 3501 §9, RFC 9051 §9), shared
 * by the reader and the argument parsers. Private to imap/.
 */
#ifndef PETREL_IMAP_CHARS_H
#define PETREL_IMAP_CHARS_H

#include <stdbool.h>
#include <string.h>

/*
 * ATOM-CHAR is any CHAR except atom-specials: "(" ")" "{" SP CTL
 * list-wildcards ("%" "*") quoted-specials ('"' "\") resp-specials ("]").
 */
static inline bool is_atom_char(int ch)
{
    return ch > 0x20 && ch < 0x7f && !strchr("(){%*\"\\]", ch);
}

/* ASTRING-CHAR = ATOM-CHAR / resp-specials */
static inline bool is_astring_char(int ch)
{
    return is_atom_char(ch) || ch == ']';
}

#endif
