/* test_tls_cert: tls_cert_create_selfsigned() into a temporary directory, read back with OpenSSL:
 * subject, issuer, subjectAltName entries, validity, serial, extensions, signature, key match,
 * file modes, refusal to overwrite (and nothing left behind on any failure), bad host names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/tls_cert.h"

struct fx {
    char dir[64];
    char cert[PATH_MAX];
    char key[PATH_MAX];
};

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[PATH_MAX];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/gannet-test-tls-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->cert, sizeof(f->cert), "%s/tls/cert.pem", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/tls/key.pem", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_rf(f->dir);
    free(f);
    return 0;
}

static X509 *load_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    return k;
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    return st.st_mode & 07777;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Names in dir other than . and .. (to catch left-over temporary files). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strdup(buf);
}

/* The subject's CN, or "" when it has none. */
static void subject_cn(X509 *x, char *out, size_t size)
{
    out[0] = '\0';
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)size);
    if (n < 0)
        out[0] = '\0';
}

/* subjectAltName as "DNS:a,IP:1.2.3.4,..." in certificate order. */
static void san_text(X509 *x, char *out, size_t size, int *critical_r)
{
    out[0] = '\0';
    int crit = -1;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    assert_non_null(gens);
    *critical_r = crit;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char item[128];
        if (g->type == GEN_DNS) {
            snprintf(item, sizeof(item), "DNS:%.*s", ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            char *ip = i2s_ASN1_OCTET_STRING(NULL, g->d.iPAddress); /* hex octets */
            int len = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *b = ASN1_STRING_get0_data(g->d.iPAddress);
            if (len == 4)
                snprintf(item, sizeof(item), "IP:%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
            else
                snprintf(item, sizeof(item), "IP6:%s", ip);
            OPENSSL_free(ip);
        } else {
            snprintf(item, sizeof(item), "other:%d", g->type);
        }
        if (out[0])
            strncat(out, ",", size - strlen(out) - 1);
        strncat(out, item, size - strlen(out) - 1);
    }
    GENERAL_NAMES_free(gens);
}

static void assert_profile(X509 *x, EVP_PKEY *k, unsigned days)
{
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    /* self-signed: issuer = subject, and the signature verifies with the certificate's key */
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_non_null(pub);
    assert_int_equal(X509_verify(x, pub), 1);
    assert_int_equal(X509_check_private_key(x, k), 1);
    /* P-256 key, ECDSA with SHA-256 */
    assert_true(EVP_PKEY_is_a(k, "EC"));
    char group[64];
    size_t glen = 0;
    assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof(group), &glen), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    /* serial: positive, exactly 128 bits */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_int_equal(BN_num_bits(bn), 128);
    BN_free(bn);
    /* validity: starts now, lasts `days` */
    int pday = 0, psec = 0;
    assert_int_equal(ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(x), X509_get0_notAfter(x)),
                     1);
    assert_int_equal(pday, (int)days);
    assert_int_equal(psec, 0);
    time_t now = time(NULL);
    assert_true(X509_cmp_time(X509_get0_notBefore(x), &now) <= 0);
    time_t before = now - 120;
    assert_true(X509_cmp_time(X509_get0_notBefore(x), &before) > 0);
    /* extensions */
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_false(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 0);
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(x);
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(x);
    assert_non_null(skid);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(skid, akid), 0);
    /* a verifier in strict mode accepts it as its own trust anchor for the host */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_add_cert(store, x), 1);
    assert_int_equal(X509_STORE_CTX_init(vctx, store, x, NULL), 1);
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(vctx);
    X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_purpose(vp, X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(vctx) != 1)
        fail_msg("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
}

/* Table: host name → expected CN and subjectAltName. */
static const struct {
    const char *host;
    unsigned days, expect_days;
    const char *cn;  /* "" = no CN */
    const char *san; /* san_text() form */
    int san_critical;
    const char *match_host; /* X509_check_host() must accept */
    const char *match_ip;   /* X509_check_ip_asc() must accept, or NULL */
    const char *nomatch_ip; /* must refuse, or NULL */
} good[] = {
    {"mx.example.test", 30, 30, "mx.example.test", "DNS:mx.example.test", 0, "mx.example.test",
     NULL, "127.0.0.1"},
    {"localhost", 0, TLS_CERT_DEFAULT_DAYS, "localhost",
     "DNS:localhost,IP:127.0.0.1,IP6:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01", 0,
     "localhost", "127.0.0.1", "127.0.0.2"},
    {"LocalHost", 1, 1, "LocalHost",
     "DNS:LocalHost,IP:127.0.0.1,IP6:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01", 0,
     "localhost", "::1", NULL},
    {"192.0.2.7", 2, 2, "192.0.2.7", "IP:192.0.2.7", 0, NULL, "192.0.2.7", "192.0.2.8"},
    {"2001:db8::1", 3, 3, "2001:db8::1", "IP6:20:01:0D:B8:00:00:00:00:00:00:00:00:00:00:00:01", 0,
     NULL, "2001:db8::1", "::1"},
    {"mail_1.example-2.test", TLS_CERT_MAX_DAYS, TLS_CERT_MAX_DAYS, "mail_1.example-2.test",
     "DNS:mail_1.example-2.test", 0, NULL, NULL, NULL},
    /* 74 characters: longer than a CN may be; the name lives in a critical subjectAltName */
    {"a-very-long-label-for-testing-only-0123456789.mail.subdomain.example.test", 10, 10, "",
     "DNS:a-very-long-label-for-testing-only-0123456789.mail.subdomain.example.test", 1,
     "a-very-long-label-for-testing-only-0123456789.mail.subdomain.example.test", NULL, NULL},
};

static void test_create_and_read_back(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char cert[PATH_MAX], key[PATH_MAX];
        snprintf(cert, sizeof(cert), "%s/c%zu/cert.pem", f->dir, i);
        snprintf(key, sizeof(key), "%s/k%zu/key.pem", f->dir, i);
        const char *err = NULL;
        int r = tls_cert_create_selfsigned(cert, key, good[i].host, good[i].days, &err);
        if (r != 0)
            fail_msg("%s: %s", good[i].host, err ? err : "(no error text)");
        assert_int_equal(file_mode(key), 0600);
        assert_int_equal(file_mode(cert), 0644);
        assert_true(tls_cert_files_exist(cert, key));
        X509 *x = load_cert(cert);
        EVP_PKEY *k = load_key(key);
        assert_profile(x, k, good[i].expect_days);
        char text[512];
        subject_cn(x, text, sizeof(text));
        assert_string_equal(text, good[i].cn);
        int crit = -1;
        san_text(x, text, sizeof(text), &crit);
        assert_string_equal(text, good[i].san);
        assert_int_equal(crit, good[i].san_critical);
        if (good[i].match_host)
            assert_int_equal(X509_check_host(x, good[i].match_host, 0, 0, NULL), 1);
        assert_int_equal(X509_check_host(x, "other.example.test", 0, 0, NULL), 0);
        if (good[i].match_ip)
            assert_int_equal(X509_check_ip_asc(x, good[i].match_ip, 0), 1);
        if (good[i].nomatch_ip)
            assert_int_equal(X509_check_ip_asc(x, good[i].nomatch_ip, 0), 0);
        /* only the two files, no temporary ones */
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/c%zu", f->dir, i);
        assert_int_equal(count_entries(dir), 1);
        snprintf(dir, sizeof(dir), "%s/k%zu", f->dir, i);
        assert_int_equal(count_entries(dir), 1);
        X509_free(x);
        EVP_PKEY_free(k);
    }
}

static void test_modes_ignore_umask(void **state)
{
    struct fx *f = *state;
    mode_t old = umask(0);
    const char *err = NULL;
    int r = tls_cert_create_selfsigned(f->cert, f->key, "mx.example.test", 1, &err);
    umask(old);
    assert_int_equal(r, 0);
    assert_int_equal(file_mode(f->key), 0600);
    assert_int_equal(file_mode(f->cert), 0644);
    /* the key's directory was created private */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tls", f->dir);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    old = umask(0077);
    snprintf(f->cert, sizeof(f->cert), "%s/x/cert.pem", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/x/key.pem", f->dir);
    r = tls_cert_create_selfsigned(f->cert, f->key, "mx.example.test", 1, &err);
    umask(old);
    assert_int_equal(r, 0);
    assert_int_equal(file_mode(f->cert), 0644);
    assert_int_equal(file_mode(f->key), 0600);
}

static void test_deep_parent_dirs_and_same_dir(void **state)
{
    struct fx *f = *state;
    char cert[PATH_MAX], key[PATH_MAX];
    snprintf(cert, sizeof(cert), "%s/a/b/c/cert.pem", f->dir);
    snprintf(key, sizeof(key), "%s/d/e/key.pem", f->dir);
    const char *err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(cert, key, "mx.example.test", 5, &err), 0);
    assert_true(tls_cert_files_exist(cert, key));
    /* both in one directory */
    assert_int_equal(tls_cert_create_selfsigned(f->cert, f->key, "mx.example.test", 5, &err), 0);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tls", f->dir);
    assert_int_equal(count_entries(dir), 2);
}

static void test_never_overwrites(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(f->cert, f->key, "mx.example.test", 5, &err), 0);
    char *cert0 = slurp(f->cert), *key0 = slurp(f->key);

    /* both exist */
    err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(f->cert, f->key, "mx.example.test", 5, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, "already exists"));

    /* only the certificate exists: the key is not created */
    char key2[PATH_MAX];
    snprintf(key2, sizeof(key2), "%s/tls/key2.pem", f->dir);
    err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(f->cert, key2, "mx.example.test", 5, &err), -1);
    assert_non_null(strstr(err, f->cert));
    assert_false(exists(key2));

    /* only the key exists: the certificate is not created */
    char cert2[PATH_MAX];
    snprintf(cert2, sizeof(cert2), "%s/tls/cert2.pem", f->dir);
    err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(cert2, f->key, "mx.example.test", 5, &err), -1);
    assert_non_null(strstr(err, f->key));
    assert_false(exists(cert2));

    /* a dangling symbolic link counts as existing */
    char link_path[PATH_MAX];
    snprintf(link_path, sizeof(link_path), "%s/tls/dangling.pem", f->dir);
    assert_int_equal(symlink("/nonexistent/gannet-test", link_path), 0);
    err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(cert2, link_path, "mx.example.test", 5, &err), -1);
    assert_false(exists(cert2));
    assert_int_equal(unlink(link_path), 0);

    /* the originals are untouched and no temporary files are left */
    char *cert1 = slurp(f->cert), *key1 = slurp(f->key);
    assert_string_equal(cert0, cert1);
    assert_string_equal(key0, key1);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tls", f->dir);
    assert_int_equal(count_entries(dir), 2);
    free(cert0);
    free(key0);
    free(cert1);
    free(key1);
}

static void test_refusals_leave_nothing(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *host;
        unsigned days;
        const char *err_part;
    } bad[] = {
        {"", 1, "not a host name"},
        {"a b.test", 1, "not a host name"},
        {"mx.test,DNS:evil.test", 1, "not a host name"},
        {"mx.test\nx", 1, "not a host name"},
        {"/CN=x", 1, "not a host name"},
        {".mx.test", 1, "not a host name"},
        {"mx..test", 1, "not a host name"},
        {"mx.test.", 1, "not a host name"},
        {"mx.test*", 1, "not a host name"},
        {"1.2.3.4:25", 1, "not a host name"},
        {"mx.example.test", TLS_CERT_MAX_DAYS + 1, "days"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = NULL;
        assert_int_equal(
            tls_cert_create_selfsigned(f->cert, f->key, bad[i].host, bad[i].days, &err), -1);
        assert_non_null(err);
        if (!strstr(err, bad[i].err_part))
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, bad[i].err_part);
        assert_false(exists(f->cert));
        assert_false(exists(f->key));
    }
    /* a label of 64 characters, a name of 254 */
    char host[300];
    memset(host, 'a', 64);
    strcpy(host + 64, ".test");
    const char *err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(f->cert, f->key, host, 1, &err), -1);
    for (int i = 0; i < 254; i++)
        host[i] = (i % 10 == 9) ? '.' : 'a';
    host[254] = '\0';
    host[253] = 'a';
    assert_int_equal(tls_cert_create_selfsigned(f->cert, f->key, host, 1, &err), -1);
    /* 253 is allowed */
    host[253] = '\0';
    assert_int_equal(tls_cert_create_selfsigned(f->cert, f->key, host, 1, &err), 0);
    assert_true(tls_cert_files_exist(f->cert, f->key));
}

static void test_bad_paths(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    /* same file for both */
    assert_int_equal(tls_cert_create_selfsigned(f->cert, f->cert, "mx.example.test", 1, &err), -1);
    assert_non_null(strstr(err, "two files"));
    assert_false(exists(f->cert));
    assert_int_equal(tls_cert_create_selfsigned("", f->key, "mx.example.test", 1, &err), -1);
    assert_false(exists(f->key));
    /* a parent that is a file */
    char file[PATH_MAX], cert[PATH_MAX];
    snprintf(file, sizeof(file), "%s/plain", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(cert, sizeof(cert), "%s/plain/cert.pem", f->dir);
    err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(cert, f->key, "mx.example.test", 1, &err), -1);
    assert_non_null(strstr(err, "not a directory"));
    /* the certificate cannot be written after the key was (a file name that only fits without
     * the temporary suffix, which fails even for root): the key is removed again */
    char name[251];
    memset(name, 'c', 250);
    name[250] = '\0';
    snprintf(cert, sizeof(cert), "%s/tls/%s", f->dir, name);
    err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(cert, f->key, "mx.example.test", 1, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, "temporary file"));
    assert_false(exists(f->key));
    assert_false(exists(cert));
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tls", f->dir);
    assert_int_equal(count_entries(dir), 0);
}

static void test_serials_and_keys_differ(void **state)
{
    struct fx *f = *state;
    char cert2[PATH_MAX], key2[PATH_MAX];
    snprintf(cert2, sizeof(cert2), "%s/two/cert.pem", f->dir);
    snprintf(key2, sizeof(key2), "%s/two/key.pem", f->dir);
    const char *err = NULL;
    assert_int_equal(tls_cert_create_selfsigned(f->cert, f->key, "mx.example.test", 1, &err), 0);
    assert_int_equal(tls_cert_create_selfsigned(cert2, key2, "mx.example.test", 1, &err), 0);
    X509 *a = load_cert(f->cert), *b = load_cert(cert2);
    EVP_PKEY *kb = load_key(key2);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    /* a key from another run does not match */
    assert_int_equal(X509_check_private_key(a, kb), 0);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(kb);
}

static void test_files_exist(void **state)
{
    struct fx *f = *state;
    assert_false(tls_cert_files_exist(f->cert, f->key));
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tls", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    FILE *fp = fopen(f->cert, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_false(tls_cert_files_exist(f->cert, f->key));
    assert_false(tls_cert_files_exist(f->key, f->cert));
    fp = fopen(f->key, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_true(tls_cert_files_exist(f->cert, f->key));
    assert_true(tls_cert_files_exist(f->key, f->cert));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes_ignore_umask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_parent_dirs_and_same_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_leave_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serials_and_keys_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_exist, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
