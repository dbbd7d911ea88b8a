/* dir_password: account password hashes (crypt(3) strings from libxcrypt, plus hMailServer's
 * salted SHA-256 form for imported accounts).
 *
 * New passwords are hashed with yescrypt ("$y$", libxcrypt's default cost) and a fresh random
 * salt; verification accepts every scheme libxcrypt knows, so imported "$6$" (SHA-512) and
 * "$2b$" (bcrypt) hashes keep working, and hMailServer's form (hmailserver-behaviour.md §3.4:
 * 6-character salt + 64 hex digits of SHA-256(salt + password), 70 characters). Hashing is slow
 * on purpose: the server runs it on the worker pool, never on the event loop. */
#ifndef GANNET_DIR_DIR_PASSWORD_H
#define GANNET_DIR_DIR_PASSWORD_H
#include <stdbool.h>
#include <stddef.h>

#define DIR_PASSWORD_HASH_MAX 256 /* == sizeof(struct dir_account.password_hash) */
#define DIR_PASSWORD_HMAIL_LEN 70 /* hMailServer: 6-character salt + 64 hex digits */
/* The most costly imported hashes accepted (each login pays this, on a worker thread). */
#define DIR_PASSWORD_BCRYPT_COST_MAX 16          /* 2^16 rounds */
#define DIR_PASSWORD_SHA512_ROUNDS_MAX 1000000UL /* default 5000 */
#define DIR_PASSWORD_YESCRYPT_COST_MAX 7UL       /* libxcrypt cost; Gannet's own hashes use 5 */

/* Hash password into hash_out (size bytes, at least DIR_PASSWORD_HASH_MAX). Returns 0, or -1
 * with *err_r set (empty password, no randomness, hash too long). */
int dir_password_hash(const char *password, char *hash_out, size_t size, const char **err_r);
/* True when password matches hash. False for an empty or malformed hash, an empty password, or
 * a mismatch; the final comparison takes the same time wherever the strings differ. */
bool dir_password_verify(const char *hash, const char *password);
/* True when hash is not a yescrypt ("$y$") hash, so a successful login should replace it. */
bool dir_password_is_legacy(const char *hash);
/* Is hash an importable stored hash: yescrypt ("$y$"), SHA-512 crypt ("$6$"), bcrypt ("$2b$",
 * "$2y$"), or hMailServer's 70-character salted SHA-256 form? Checks the work factor (at most
 * the *_MAX above) and the shape (libxcrypt must accept the setting and produce a hash of the
 * same length). Returns 0, or -1 with a one-line *err_r (static text) saying what is wrong. */
int dir_password_hash_check(const char *hash, const char **err_r);

#endif
