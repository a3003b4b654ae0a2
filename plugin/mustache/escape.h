/*
 * Escaping of interpolated values ({{x}}) for the three modes of
 * aftercall/template.h. Each function appends the escaped form of s (n bytes)
 * to out and returns 0, or -1 when out of memory.
 *
 * html:     & < > " become &amp; &lt; &gt; &quot; (the Mustache spec's rule);
 *           NUL becomes U+FFFD; all other bytes are copied.
 *
 * markdown: the value reads as its literal text once a CommonMark (or GFM)
 *           renderer has turned the document into HTML:
 *           - every ASCII punctuation character is backslash-escaped, so no
 *             inline or block construct (emphasis, links, images, autolinks,
 *             raw HTML, entities, code, tables, strikethrough, headings,
 *             lists, block quotes, thematic breaks, setext underlines, fences,
 *             link reference definitions) and no GFM autolink (www., scheme:)
 *             can start inside the value;
 *           - '@' is followed by U+200B ZERO WIDTH SPACE: GFM links email
 *             addresses (and mailto:, xmpp:) in the text once the escapes
 *             are resolved, and the space leaves it no domain to link;
 *           - spaces and tabs at the start or end of each line of the value
 *             become &#32; / &#9;, so they cannot indent a code block, open a
 *             hard break or be trimmed away;
 *           - each line break (CR LF, CR or LF) inside the value becomes a
 *             hard line break "\" LF; line breaks at the very end of the
 *             value are dropped (a hard break cannot end a paragraph);
 *           - NUL and every byte that is not part of a well-formed UTF-8
 *             sequence become U+FFFD.
 *
 * text:     for one-line fields: every run of ASCII white space (space, tab,
 *           CR, LF, VT, FF) becomes a single space, and NUL U+FFFD; nothing
 *           else changes.
 */
#ifndef AC_MUSTACHE_ESCAPE_H
#define AC_MUSTACHE_ESCAPE_H

#include <stddef.h>

#include <aftercall/template.h>

#include "mustache.h"

/* Internal to the plugin: keep these out of its dynamic symbol table. */
#pragma GCC visibility push(hidden)

int escape_html(struct mustache_buf *out, const char *s, size_t n);
int escape_markdown(struct mustache_buf *out, const char *s, size_t n);
int escape_text(struct mustache_buf *out, const char *s, size_t n);

/* The escaper of a mode, or NULL for an unknown mode. */
mustache_escape_fn escape_for_mode(ac_escape mode);

#pragma GCC visibility pop

#endif /* AC_MUSTACHE_ESCAPE_H */
