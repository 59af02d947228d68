/* jinja_str.h — Python str methods used by the Jinja builtins (jinja_str.c).
 * Results are views into the input or new strings in the arena; the bool
 * functions return false only when the arena is exhausted. */
#ifndef HN_CHAT_JINJA_STR_H
#define HN_CHAT_JINJA_STR_H

#include "chat/jinja_internal.h"

bool jstr_is_space(uint32_t c);
/* strip/lstrip/rstrip; chars NULL: whitespace. A view into s. */
jv jstr_strip(jv s, const char *chars, size_t cn, bool left, bool right);
/* split/rsplit; sep NULL: runs of whitespace; maxsplit < 0: no limit. */
bool jstr_split(jarena *a, jv s, const jv *sep, int64_t maxsplit, bool from_right, jlist **out);
bool jstr_replace(jarena *a, jv s, jv old, jv rep, int64_t count, jv *out);
bool jstr_has_non_ascii(jv s);
/* mode 'u' upper, 'l' lower, 'c' capitalize, 't' str.title, 'j' Jinja title filter. */
bool jstr_case(jarena *a, jv s, char mode, jv *out);
bool jstr_indent(jarena *a, jv s, jv ind, bool first, bool blank, jv *out);
/* Code-point index of sub in s, -1 if absent. */
int64_t jstr_find(jv s, jv sub);
int64_t jstr_count(jv s, jv sub);

#endif
