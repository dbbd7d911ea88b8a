/* dir_password: yescrypt password hashing and verification with libxcrypt
 * (crypt_gensalt_rn + crypt_r; see dir_password.h), and hMailServer's salted SHA-256 form
 * (hmailserver-behaviour.md §3.4) with OpenSSL's EVP digest API.
 *
 *   dir_password_hash(pw, out, size, &err)  new "$y$..." hash with a random salt
 *   dir_password_verify(hash, pw)           re-hash with hash as setting, constant-time compare
 *   dir_password_is_legacy(hash)            not yescrypt: replace on the next login
 *   dir_password_hash_check(hash, &err)     is an imported hash one of the accepted forms
 *
 * struct crypt_data is ~32 KB, so it is heap-allocated per call (hashing dominates anyway).
 * Failures return -1/false; nothing is logged here (the caller knows the context). */
#include "dir/dir_password.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

#define HMAIL_SALT_LEN 6
#define HMAIL_HEX_LEN 64

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* hMailServer's form: 6 salt characters (hMailServer writes hex digits; any letter or digit is
 * taken) followed by the 64 hex digits of SHA-256(salt + password). */
static bool is_hmail_hash(const char *hash)
{
    if (strlen(hash) != DIR_PASSWORD_HMAIL_LEN)
        return false;
    for (int i = 0; i < HMAIL_SALT_LEN; i++)
        if (!is_alnum(hash[i]))
            return false;
    for (int i = HMAIL_SALT_LEN; i < DIR_PASSWORD_HMAIL_LEN; i++)
        if (!is_hex(hash[i]))
            return false;
    return true;
}

static bool hmail_verify(const char *hash, const char *password)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return false;
    bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, hash, HMAIL_SALT_LEN) == 1 &&
              EVP_DigestUpdate(ctx, password, strlen(password)) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen * 2 == HMAIL_HEX_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return false;
    static const char hexdigits[] = "0123456789abcdef";
    char want[HMAIL_HEX_LEN], have[HMAIL_HEX_LEN];
    for (unsigned i = 0; i < mdlen; i++) {
        want[2 * i] = hexdigits[md[i] >> 4];
        want[2 * i + 1] = hexdigits[md[i] & 0xf];
    }
    /* Stored digits may be upper case: fold them to lower case (digits are below 'A'). */
    for (int i = 0; i < HMAIL_HEX_LEN; i++)
        have[i] = (char)(hash[HMAIL_SALT_LEN + i] | (hash[HMAIL_SALT_LEN + i] >= 'A' ? 0x20 : 0));
    ok = CRYPTO_memcmp(want, have, HMAIL_HEX_LEN) == 0;
    OPENSSL_cleanse(md, sizeof(md));
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

int dir_password_hash(const char *password, char *hash_out, size_t size, const char **err_r)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!password || !*password) {
        *err_r = "empty password";
        return -1;
    }
    /* NULL random bytes: libxcrypt reads the salt from the kernel (getrandom). */
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, setting, (int)sizeof(setting))) {
        *err_r = "cannot generate a password salt";
        return -1;
    }
    struct crypt_data *data = xcalloc(1, sizeof(*data));
    const char *hash = crypt_r(password, setting, data);
    int ret = -1;
    if (!hash || hash[0] == '*')
        *err_r = "password hashing failed";
    else if (strlen(hash) >= size)
        *err_r = "password hash too long";
    else {
        memcpy(hash_out, hash, strlen(hash) + 1);
        ret = 0;
    }
    explicit_bzero(data, sizeof(*data));
    free(data);
    return ret;
}

bool dir_password_verify(const char *hash, const char *password)
{
    if (!hash || !*hash || hash[0] == '*' || !password || !*password)
        return false;
    if (is_hmail_hash(hash))
        return hmail_verify(hash, password);
    struct crypt_data *data = xcalloc(1, sizeof(*data));
    const char *out = crypt_r(password, hash, data);
    bool ok = false;
    if (out && out[0] != '*') {
        size_t n = strlen(hash);
        /* Lengths are public (the hash format fixes them); contents compare in constant time. */
        ok = strlen(out) == n && CRYPTO_memcmp(out, hash, n) == 0;
    }
    explicit_bzero(data, sizeof(*data));
    free(data);
    return ok;
}

bool dir_password_is_legacy(const char *hash)
{
    return strncmp(hash, "$y$", 3) != 0;
}

/* libxcrypt must accept hash as a setting and give back a hash of the same length with the same
 * setting (everything up to the last '$'); a truncated or padded hash fails this. */
static bool crypt_shape_ok(const char *hash)
{
    struct crypt_data *data = xcalloc(1, sizeof(*data));
    const char *out = crypt_r("x", hash, data);
    const char *dollar = strrchr(hash, '$');
    size_t setting = dollar ? (size_t)(dollar - hash) + 1 : 0;
    bool ok =
        out && out[0] != '*' && strlen(out) == strlen(hash) && strncmp(out, hash, setting) == 0;
    explicit_bzero(data, sizeof(*data));
    free(data);
    return ok;
}

/* Is the params field of a "$y$PARAMS$..." hash what libxcrypt writes for cost 1..max? */
static bool yescrypt_params_ok(const char *params, size_t len, unsigned long max)
{
    static const char rbytes[16] = {0};
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    for (unsigned long cost = 1; cost <= max; cost++) {
        if (!crypt_gensalt_rn("$y$", cost, rbytes, (int)sizeof(rbytes), setting,
                              (int)sizeof(setting)))
            continue;
        const char *p = setting + 3, *end = strchr(p, '$');
        if (end && (size_t)(end - p) == len && memcmp(p, params, len) == 0)
            return true;
    }
    return false;
}

/* Refuse work factors that would make every login take seconds or more (and that would make
 * this check itself hang). The shape is checked afterwards. */
static int cost_check(const char *hash, const char **err_r)
{
    if (strncmp(hash, "$2", 2) == 0) { /* $2b$NN$ */
        if (hash[3] == '$' && hash[4] >= '0' && hash[4] <= '9' && hash[5] >= '0' &&
            hash[5] <= '9' &&
            (hash[4] - '0') * 10 + (hash[5] - '0') > DIR_PASSWORD_BCRYPT_COST_MAX) {
            *err_r = "bcrypt cost above 16 (logins would be too slow)";
            return -1;
        }
    } else if (strncmp(hash, "$6$rounds=", 10) == 0) {
        size_t digits = strspn(hash + 10, "0123456789");
        if (digits > 7 ||
            (digits > 0 && strtoul(hash + 10, NULL, 10) > DIR_PASSWORD_SHA512_ROUNDS_MAX)) {
            *err_r = "SHA-512 rounds above 1000000 (logins would be too slow)";
            return -1;
        }
    } else if (strncmp(hash, "$y$", 3) == 0) {
        const char *params = hash + 3, *end = strchr(params, '$');
        if (end &&
            !yescrypt_params_ok(params, (size_t)(end - params), DIR_PASSWORD_YESCRYPT_COST_MAX)) {
            *err_r = "unsupported yescrypt parameters (libxcrypt costs 1 to 7 are accepted, as in "
                     "$y$j9T$...)";
            return -1;
        }
    }
    return 0;
}

int dir_password_hash_check(const char *hash, const char **err_r)
{
    static const struct {
        const char *prefix, *err;
    } schemes[] = {
        {"$y$", "malformed yescrypt ($y$) password hash"},
        {"$6$", "malformed SHA-512 ($6$) password hash"},
        {"$2b$", "malformed bcrypt ($2b$) password hash"},
        {"$2y$", "malformed bcrypt ($2y$) password hash"},
    };
    if (!hash || !*hash) {
        *err_r = "empty password hash";
        return -1;
    }
    if (strlen(hash) >= DIR_PASSWORD_HASH_MAX) {
        *err_r = "password hash too long";
        return -1;
    }
    for (const char *p = hash; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            *err_r = "invalid character in password hash";
            return -1;
        }
    }
    if (is_hmail_hash(hash))
        return 0;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strncmp(hash, schemes[i].prefix, strlen(schemes[i].prefix)) != 0)
            continue;
        if (cost_check(hash, err_r) < 0)
            return -1;
        if (!crypt_shape_ok(hash)) {
            *err_r = schemes[i].err;
            return -1;
        }
        return 0;
    }
    *err_r = "unsupported password hash (use yescrypt $y$, SHA-512 $6$, bcrypt $2b$ or $2y$, or "
             "hMailServer's 70-character salted SHA-256)";
    return -1;
}
