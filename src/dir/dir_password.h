/* dir_password: account password hashes (crypt(3) strings from libxcrypt).
 *
 * New passwords are hashed with yescrypt ("$y$", libxcrypt's default cost) and a fresh random
 * salt; verification accepts every scheme libxcrypt knows, so imported "$6$" (SHA-512) and
 * "$2b$" (bcrypt) hashes keep working. Hashing is slow on purpose: the server runs it on the
 * worker pool, never on the event loop. */
#ifndef GANNET_DIR_DIR_PASSWORD_H
#define GANNET_DIR_DIR_PASSWORD_H
#include <stdbool.h>
#include <stddef.h>

#define DIR_PASSWORD_HASH_MAX 256 /* == sizeof(struct dir_account.password_hash) */

/* Hash password into hash_out (size bytes, at least DIR_PASSWORD_HASH_MAX). Returns 0, or -1
 * with *err_r set (empty password, no randomness, hash too long). */
int dir_password_hash(const char *password, char *hash_out, size_t size, const char **err_r);
/* True when password matches hash. False for an empty or malformed hash, an empty password, or
 * a mismatch; the final comparison takes the same time wherever the strings differ. */
bool dir_password_verify(const char *hash, const char *password);

#endif
