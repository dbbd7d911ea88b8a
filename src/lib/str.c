/* str: ASCII string helpers used by protocol and directory code. No locale dependence. */
#include "lib/str.h"

#include <string.h>

static int lc(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

bool str_ieq(const char *a, const char *b)
{
    while (*a && *b) {
        if (lc((unsigned char)*a) != lc((unsigned char)*b))
            return false;
        a++;
        b++;
    }
    return *a == *b;
}

bool str_istarts(const char *s, const char *prefix)
{
    while (*prefix) {
        if (lc((unsigned char)*s) != lc((unsigned char)*prefix))
            return false;
        s++;
        prefix++;
    }
    return true;
}

bool str_iends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && str_ieq(s + n - m, suffix);
}

char *str_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

char *str_lower(char *s)
{
    for (char *p = s; *p; p++)
        *p = (char)lc((unsigned char)*p);
    return s;
}

int str_copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (size == 0)
        return -1;
    if (n >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

bool str_wildcard_match(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '?' || (*p && *p != '*' && lc((unsigned char)*p) == lc((unsigned char)*s))) {
            p++;
            s++;
        } else if (*p == '*') {
            star = p++;
            resume = s;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}
