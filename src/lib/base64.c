/* base64: thin wrapper over EVP_DecodeBlock / EVP_EncodeBlock that fixes their rough edges:
 * EVP_DecodeBlock counts padding as output bytes and accepts a length that is not a multiple of
 * four; here padding is subtracted and such input is rejected. */
#include "lib/base64.h"

#include <openssl/evp.h>
#include <string.h>

long base64_decode(const char *s, unsigned char *out, size_t out_size)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n % 4 != 0 || n / 4 * 3 + 1 > out_size)
        return -1;
    if (n == 0) {
        out[0] = '\0';
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool pad_ok = c == '=' && (i == n - 1 || (i == n - 2 && s[n - 1] == '='));
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || pad_ok))
            return -1;
    }
    int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (r < 0)
        return -1;
    size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    size_t len = (size_t)r - pad;
    out[len] = '\0';
    return (long)len;
}

size_t base64_encode(const unsigned char *p, size_t n, char *out, size_t out_size)
{
    if (4 * ((n + 2) / 3) + 1 > out_size) {
        if (out_size)
            out[0] = '\0';
        return 0;
    }
    int r = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return r < 0 ? 0 : (size_t)r;
}
