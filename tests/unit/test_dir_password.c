/* test_dir_password: the additions to src/dir/dir_password.c for imported hashes —
 * verification of hMailServer's salted SHA-256 form (hmailserver-behaviour.md §3.4) and of the
 * crypt(3) forms Gannet accepts ($6$, $2b$, $2y$, $y$), dir_password_is_legacy, and
 * dir_password_hash_check's accepted and rejected shapes, table-driven. The vectors were made
 * outside Gannet: `openssl passwd -6`, Python's hashlib for SHA-256, and the Openwall
 * crypt_blowfish test vector for bcrypt. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dir/dir_password.h"

/* `openssl passwd -6 -salt abc secret` */
#define SHA512                                                                                     \
    "$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/"            \
    "TsVArtr91iR1"
/* `openssl passwd -6 -salt 'rounds=10000$saltsalt' 'pass word'` (explicit rounds) */
#define SHA512_ROUNDS                                                                              \
    "$6$rounds=10000$saltsalt$8aC9MaAuRad4a9/JO/"                                                  \
    "WLFPtzdkcuNdlJaWtVjSslLn3Lc9RD5yzBqnq1DkIKyMIyM0pf"                                           \
    "cHlAcJV177rpnVrHQ/"
/* Openwall crypt_blowfish: "U*U" */
/* libxcrypt, yescrypt cost 1 (crypt_gensalt "$y$" count 1), password "x" */
#define YESCRYPT_1 "$y$j75$/hWRUN0RX/V5e9hzB1Qzs0$yveSGrP3us0OTd5LD5d39U/cBWVP71VAsjR01ICqiA2"
#define BCRYPT_B "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
#define BCRYPT_Y "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
/* salt "a1b2c3" + hex SHA-256("a1b2c3secret") */
#define HMAIL "a1b2c3ff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfb"
#define HMAIL_UPPER "a1b2c3FF913CF667513B753E458709F781B7DBB41DB0E77727643CD704F29D9EB27DFB"
/* salt "Zx9Qw1" (letters are allowed in the salt) + hex SHA-256("Zx9Qw1pässwörd") in UTF-8
 * (`printf %s 'Zx9Qw1pässwörd' | sha256sum`) */
#define HMAIL_LETTERS "Zx9Qw17317591a628e3f5bcae0d7b378ac56c987abeb28db3013240978e04ef103be13"

static void test_verify(void **state)
{
    (void)state;
    char yes[DIR_PASSWORD_HASH_MAX];
    const char *err = NULL;
    assert_int_equal(dir_password_hash("secret", yes, sizeof(yes), &err), 0);
    const struct {
        const char *hash, *pw;
        bool ok;
    } cases[] = {
        {SHA512, "secret", true},
        {SHA512, "Secret", false},
        {SHA512, "", false},
        {BCRYPT_B, "U*U", true},
        {BCRYPT_B, "U*U*", false},
        {BCRYPT_Y, "U*U", true},
        {YESCRYPT_1, "x", true},
        {YESCRYPT_1, "X", false},
        {HMAIL, "secret", true},
        {HMAIL, "Secret", false},
        {HMAIL, "secret ", false},
        {HMAIL, "secre", false},
        {HMAIL, "", false},
        {HMAIL_UPPER, "secret", true},
        /* one digest digit changed; the salt changed */
        {"a1b2c3ff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfc", "secret", false},
        {"a1b2c4ff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfb", "secret", false},
        /* 69 and 71 characters: not the hMailServer form, and not crypt either */
        {"a1b2cff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfb", "secret", false},
        {"a1b2c3ff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfb0", "secret",
         false},
        {"", "secret", false},
        {"*", "secret", false},
        {yes, "secret", true},
        {yes, "secreT", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (dir_password_verify(cases[i].hash, cases[i].pw) != cases[i].ok)
            fail_msg("case %zu: %s with \"%s\" should %s", i, cases[i].hash, cases[i].pw,
                     cases[i].ok ? "verify" : "fail");
    }
    assert_false(dir_password_verify(NULL, "secret"));
    assert_false(dir_password_verify(HMAIL, NULL));
}

static void test_hmail_letters(void **state)
{
    (void)state;
    assert_true(dir_password_verify(HMAIL_LETTERS, "p\xc3\xa4ssw\xc3\xb6rd"));
    assert_false(dir_password_verify(HMAIL_LETTERS, "p\xe4ssw\xf6rd")); /* Latin-1 bytes */
    assert_false(dir_password_verify(HMAIL_LETTERS, "passwort"));
    assert_true(dir_password_verify(SHA512_ROUNDS, "pass word"));
    assert_false(dir_password_verify(SHA512_ROUNDS, "password"));
}

static void test_is_legacy(void **state)
{
    (void)state;
    char yes[DIR_PASSWORD_HASH_MAX];
    const char *err = NULL;
    assert_int_equal(dir_password_hash("x", yes, sizeof(yes), &err), 0);
    assert_false(dir_password_is_legacy(yes));
    static const char *const legacy[] = {SHA512, BCRYPT_B, BCRYPT_Y, HMAIL, "", "$y", "y$x$"};
    for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
        if (!dir_password_is_legacy(legacy[i]))
            fail_msg("case %zu: %s should be legacy", i, legacy[i]);
}

static void test_hash_check(void **state)
{
    (void)state;
    char yes[DIR_PASSWORD_HASH_MAX];
    const char *err = NULL;
    assert_int_equal(dir_password_hash("x", yes, sizeof(yes), &err), 0);
    char toolong[300];
    memset(toolong, 'a', sizeof(toolong) - 1);
    toolong[sizeof(toolong) - 1] = '\0';
    memcpy(toolong, "$6$", 3);

    static const char *const good[] = {SHA512, SHA512_ROUNDS, BCRYPT_B,      BCRYPT_Y,
                                       HMAIL,  HMAIL_UPPER,   HMAIL_LETTERS, YESCRYPT_1};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        err = NULL;
        if (dir_password_hash_check(good[i], &err) != 0)
            fail_msg("case %zu: %s refused: %s", i, good[i], err);
    }
    err = NULL;
    assert_int_equal(dir_password_hash_check(yes, &err), 0);

    const struct {
        const char *hash, *err;
    } bad[] = {
        {"", "empty password hash"},
        {NULL, "empty password hash"},
        {"secret", "unsupported password hash (use yescrypt $y$, SHA-512 $6$, bcrypt $2b$ or $2y$, "
                   "or hMailServer's 70-character salted SHA-256)"},
        /* other crypt schemes libxcrypt knows but Gannet does not import */
        {"$1$abc$ZMyLnp2bLuZDxBpSRJwRz0", "unsupported password hash (use yescrypt $y$, SHA-512 "
                                          "$6$, bcrypt $2b$ or $2y$, or hMailServer's "
                                          "70-character salted SHA-256)"},
        {"$5$abc$6Rf0jVqOKWRX4dKGJJ3Gax9j8jBcMVthpnRNVGH3CP.",
         "unsupported password hash (use yescrypt $y$, SHA-512 $6$, bcrypt $2b$ or $2y$, or "
         "hMailServer's 70-character salted SHA-256)"},
        {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
         "unsupported password hash (use yescrypt $y$, SHA-512 $6$, bcrypt $2b$ or $2y$, or "
         "hMailServer's 70-character salted SHA-256)"},
        {"abJnggxhB/yWI", "unsupported password hash (use yescrypt $y$, SHA-512 $6$, bcrypt $2b$ "
                          "or $2y$, or hMailServer's 70-character salted SHA-256)"},
        /* hMailServer's unsalted MD5 (32 hex digits) */
        {"5ebe2294ecd0e0f08eab7690d2a6ee69", "unsupported password hash (use yescrypt $y$, SHA-512 "
                                             "$6$, bcrypt $2b$ or $2y$, or hMailServer's "
                                             "70-character salted SHA-256)"},
        /* the 70-character form with a non-hex digest or a bad salt character */
        {"a1b2c3gf913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfb",
         "unsupported password hash (use yescrypt $y$, SHA-512 $6$, bcrypt $2b$ or $2y$, or "
         "hMailServer's 70-character salted SHA-256)"},
        {"a1b2.3ff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfb",
         "unsupported password hash (use yescrypt $y$, SHA-512 $6$, bcrypt $2b$ or $2y$, or "
         "hMailServer's 70-character salted SHA-256)"},
        /* cut short, padded, or with a broken setting */
        {"$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/"
         "TsVArtr91iR",
         "malformed SHA-512 ($6$) password hash"},
        {"$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/"
         "TsVArtr91iR1x",
         "malformed SHA-512 ($6$) password hash"},
        {"$6$", "malformed SHA-512 ($6$) password hash"},
        {"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
         "malformed bcrypt ($2b$) password hash"},
        {"$2b$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
         "malformed bcrypt ($2b$) password hash"},
        /* work factors that would make each login slow (checked before hashing anything) */
        {"$2b$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
         "bcrypt cost above 16 (logins would be too slow)"},
        {"$2y$17$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
         "bcrypt cost above 16 (logins would be too slow)"},
        {"$6$rounds=1000001$saltsalt$8aC9MaAuRad4a9/JO/"
         "WLFPtzdkcuNdlJaWtVjSslLn3Lc9RD5yzBqnq1DkIKyMI"
         "yM0pfcHlAcJV177rpnVrHQ/",
         "SHA-512 rounds above 1000000 (logins would be too slow)"},
        {"$6$rounds=99999999999999999999$saltsalt$x",
         "SHA-512 rounds above 1000000 (logins would be too slow)"},
        {"$y$jFT$/hWRUN0RX/V5e9hzB1Qzs0$yveSGrP3us0OTd5LD5d39U/cBWVP71VAsjR01ICqiA2",
         "unsupported yescrypt parameters (libxcrypt costs 1 to 7 are accepted, as in $y$j9T$...)"},
        {"$y$jD5$/hWRUN0RX/V5e9hzB1Qzs0$yveSGrP3us0OTd5LD5d39U/cBWVP71VAsjR01ICqiA2",
         "unsupported yescrypt parameters (libxcrypt costs 1 to 7 are accepted, as in $y$j9T$...)"},
        {"$2y$05$CCCC", "malformed bcrypt ($2y$) password hash"},
        {"$y$j9T$abc", "malformed yescrypt ($y$) password hash"},
        {"$y$$$", "unsupported yescrypt parameters (libxcrypt costs 1 to 7 are accepted, as in "
                  "$y$j9T$...)"},
        /* characters that have no place in a hash */
        {"$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/"
         "TsVArtr91iR1\n",
         "invalid character in password hash"},
        {"$6$a bc$x", "invalid character in password hash"},
        {"a1b2c3ff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27df\xc3\xa9",
         "invalid character in password hash"},
        {toolong, "password hash too long"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        if (dir_password_hash_check(bad[i].hash, &err) != -1)
            fail_msg("case %zu: %s accepted", i, bad[i].hash);
        assert_non_null(err);
        if (strcmp(err, bad[i].err) != 0)
            fail_msg("case %zu: %s: got \"%s\"", i, bad[i].hash, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_hmail_letters),
        cmocka_unit_test(test_is_legacy),
        cmocka_unit_test(test_hash_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
