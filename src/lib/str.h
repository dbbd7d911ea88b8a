/* str: small string helpers for ASCII protocol text (case-insensitive compare, trimming). */
#ifndef GANNET_LIB_STR_H
#define GANNET_LIB_STR_H
#include <stdbool.h>
#include <stddef.h>

bool str_ieq(const char *a, const char *b);
/* True when s starts with prefix, ignoring ASCII case. */
bool str_istarts(const char *s, const char *prefix);
bool str_iends(const char *s, const char *suffix);
/* Trim spaces and tabs at both ends, in place; returns s advanced past leading blanks. */
char *str_trim(char *s);
/* Lower-case ASCII letters in place; returns s. */
char *str_lower(char *s);
/* Copy at most size-1 bytes and NUL-terminate; returns -1 if truncated. */
int str_copy(char *dst, size_t size, const char *src);
/* Shell-style wildcard match with '*' and '?', ASCII case-insensitive. */
bool str_wildcard_match(const char *pattern, const char *s);

#endif
