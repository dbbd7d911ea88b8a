/* dir_password: yescrypt password hashing and verification with libxcrypt
 * (crypt_gensalt_rn + crypt_r; see dir_password.h).
 *
 *   dir_password_hash(pw, out, size, &err)  new "$y$..." hash with a random salt
 *   dir_password_verify(hash, pw)           re-hash with hash as setting, constant-time compare
 *
 * struct crypt_data is ~32 KB, so it is heap-allocated per call (hashing dominates anyway).
 * Failures return -1/false; nothing is logged here (the caller knows the context). */
#include "dir/dir_password.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"

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
