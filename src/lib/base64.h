/* base64: RFC 4648 base64 through OpenSSL's EVP encoder (design.md: no hand-written codecs). */
#ifndef GANNET_LIB_BASE64_H
#define GANNET_LIB_BASE64_H
#include <stdbool.h>
#include <stddef.h>

/* Decode s (whitespace at the ends ignored, padding required as RFC 4648 says) into out (at
 * least strlen(s) / 4 * 3 + 3 bytes, NUL-terminated for convenience). Returns the decoded length,
 * or -1 for malformed input. */
long base64_decode(const char *s, unsigned char *out, size_t out_size);
/* Encode n bytes into out (at least 4 * ((n + 2) / 3) + 1 bytes, NUL-terminated). */
size_t base64_encode(const unsigned char *p, size_t n, char *out, size_t out_size);

#endif
