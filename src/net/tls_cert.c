/* tls_cert: self-signed server certificates for `gannet init` (OpenSSL 3 API; RFC 5280 profile).
 *
 *   tls_cert_create_selfsigned()  new P-256 key + X.509 v3 certificate for one host name, written
 *                                 as two PEM files (key 0600, certificate 0644)
 *   tls_cert_files_exist()        both files are there
 *
 * What goes into the certificate (RFC 5280 §4.1, §4.2.1): version 3; a random positive serial of
 * 128 bits (§4.1.2.2 allows up to 20 octets); issuer = subject = CN=<host> (a host name longer
 * than the 64-character CN bound gets O=Gannet instead, and the subjectAltName is then critical as
 * §4.2.1.6 asks for a certificate whose subject does not name the host); validity now .. now +
 * days; extensions basicConstraints (critical, CA:FALSE), keyUsage (critical, digitalSignature —
 * all an ECDHE-ECDSA server key does), extendedKeyUsage serverAuth, subject and authority key
 * identifiers (the same value; strict verifiers such as Python 3.13's default want both), and
 * subjectAltName built as GENERAL_NAMEs (never from a config string, so no text in the host name
 * can add entries).
 *
 * Files follow the durability rule (design.md §4): write a temporary file in the target
 * directory, fsync, move it into place with renameat2(RENAME_NOREPLACE) (link()+unlink() where
 * the file system lacks it) so an existing file is never replaced, fsync the directory. The key
 * is written first; if the certificate then fails, the key is removed again, so a failure never
 * leaves one file without the other. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/xalloc.h"
#include "net/tls_cert.h"

#define CN_MAX 64 /* ub-common-name, RFC 5280 appendix A.1 */
#define HOSTNAME_MAX 253

static const char *errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *errf(const char *fmt, ...)
{
    static __thread char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return msg;
}

/* "what: <first OpenSSL error>", and the OpenSSL error queue emptied. */
static const char *ossl_err(const char *what)
{
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return errf("%s: %s", what, buf);
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

bool tls_cert_files_exist(const char *cert, const char *key)
{
    return path_exists(cert) && path_exists(key);
}

static bool is_ip_literal(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* A DNS name as it may appear in a dNSName (RFC 5280 §4.2.1.6, RFC 1034 preferred syntax; '_' is
 * tolerated as in hostnames seen in practice): labels of letters, digits, '-' and '_', 1-63
 * characters each, separated by single dots, 253 characters at most. */
static bool is_dns_name(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > HOSTNAME_MAX)
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* mkdir -p dirname(path); directories it creates get mode. */
static int make_parent_dirs(const char *path, mode_t mode, const char **err_r)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int ret = 0;
    if (slash == NULL || slash == dir) {
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *s = dir + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        struct stat st;
        if (mkdir(dir, mode) < 0 && errno != EEXIST) {
            *err_r = errf("cannot create directory %s: %s", dir, strerror(errno));
            ret = -1;
        } else if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
            *err_r = errf("%s is not a directory", dir);
            ret = -1;
        }
        *s = c;
        if (ret < 0 || c == '\0')
            break;
    }
    free(dir);
    return ret;
}

static void fsync_parent_dir(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir)
        d = "/";
    else if (slash) {
        *slash = '\0';
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Move tmp to path unless path exists. Returns 0, or -1 with errno (EEXIST when it does). */
static int rename_noreplace(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
    /* No RENAME_NOREPLACE on this file system: link() fails on an existing name, too. */
    if (link(tmp, path) < 0)
        return -1;
    (void)unlink(tmp);
    return 0;
}

/* Write data as a new file path with exactly mode (the umask does not apply), durably, never
 * replacing an existing file. */
static int write_new_file(const char *path, const char *data, size_t len, mode_t mode,
                          const char **err_r)
{
    char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC); /* created 0600: a key is never readable by others */
    if (fd < 0) {
        *err_r = errf("cannot create a temporary file for %s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    const char *what = "write";
    int ret = 0;
    if (fchmod(fd, mode) < 0) {
        what = "chmod";
        ret = -1;
    }
    for (size_t off = 0; ret == 0 && off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            ret = -1;
        } else {
            off += (size_t)w;
        }
    }
    if (ret == 0 && fsync(fd) < 0) {
        what = "fsync";
        ret = -1;
    }
    if (ret < 0)
        *err_r = errf("cannot %s %s: %s", what, tmp, strerror(errno));
    if (close(fd) < 0 && ret == 0) {
        *err_r = errf("cannot write %s: %s", tmp, strerror(errno));
        ret = -1;
    }
    if (ret == 0 && rename_noreplace(tmp, path) < 0) {
        *err_r = errno == EEXIST ? errf("%s already exists", path)
                                 : errf("cannot create %s: %s", path, strerror(errno));
        ret = -1;
    }
    if (ret < 0)
        (void)unlink(tmp);
    else
        fsync_parent_dir(path);
    free(tmp);
    return ret;
}

/* PEM text of pkey (PKCS#8, unencrypted) or x (when pkey is NULL) into a memory BIO. */
static BIO *pem_bio(EVP_PKEY *pkey, X509 *x)
{
    BIO *b = BIO_new(pkey ? BIO_s_secmem() : BIO_s_mem());
    if (!b)
        return NULL;
    int ok = pkey ? PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL)
                  : PEM_write_bio_X509(b, x);
    if (!ok) {
        BIO_free(b);
        return NULL;
    }
    return b;
}

static int write_pem(const char *path, EVP_PKEY *pkey, X509 *x, mode_t mode, const char **err_r)
{
    BIO *b = pem_bio(pkey, x);
    if (!b) {
        *err_r = ossl_err(pkey ? "cannot encode the private key" : "cannot encode the certificate");
        return -1;
    }
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    int ret = len > 0 ? write_new_file(path, data, (size_t)len, mode, err_r) : -1;
    if (len <= 0)
        *err_r = "empty PEM output";
    BIO_free(b);
    return ret;
}

static int san_push(GENERAL_NAMES *gens, int type, const char *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (!g)
        return -1;
    if (type == GEN_DNS) {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!s || !ASN1_STRING_set(s, value, (int)strlen(value))) {
            ASN1_IA5STRING_free(s);
            GENERAL_NAME_free(g);
            return -1;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
    } else {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);
        if (!ip) {
            GENERAL_NAME_free(g);
            return -1;
        }
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    }
    if (sk_GENERAL_NAME_push(gens, g) <= 0) {
        GENERAL_NAME_free(g);
        return -1;
    }
    return 0;
}

static int add_san(X509 *x, const char *hostname, bool critical)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return -1;
    int ret = 0;
    if (is_ip_literal(hostname)) {
        ret = san_push(gens, GEN_IPADD, hostname);
    } else {
        ret = san_push(gens, GEN_DNS, hostname);
        if (ret == 0 && strcasecmp(hostname, "localhost") == 0)
            ret = san_push(gens, GEN_IPADD, "127.0.0.1");
        if (ret == 0 && strcasecmp(hostname, "localhost") == 0)
            ret = san_push(gens, GEN_IPADD, "::1");
    }
    if (ret == 0 &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
        ret = -1;
    GENERAL_NAMES_free(gens);
    return ret;
}

/* A fixed extension (no outside text in value). */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int set_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    int ret = -1;
    /* Top bit set: always exactly 128 bits; BIGNUMs are non-negative, so the INTEGER is too. */
    if (bn && BN_rand(bn, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)) {
        ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
        if (serial && X509_set_serialNumber(x, serial))
            ret = 0;
        ASN1_INTEGER_free(serial);
    }
    BN_free(bn);
    return ret;
}

static X509 *build_cert(EVP_PKEY *pkey, const char *hostname, unsigned days, const char **err_r)
{
    X509 *x = X509_new();
    const char *step = "cannot allocate the certificate";
    if (!x)
        goto fail;
    step = "cannot set the version or serial number";
    if (!X509_set_version(x, X509_VERSION_3) || set_serial(x) < 0)
        goto fail;
    step = "cannot set the subject";
    X509_NAME *name = X509_get_subject_name(x);
    bool cn = strlen(hostname) <= CN_MAX;
    if (cn ? !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                         (const unsigned char *)hostname, -1, -1, 0)
           : !X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                         (const unsigned char *)"Gannet", -1, -1, 0))
        goto fail;
    if (!X509_set_issuer_name(x, name))
        goto fail;
    step = "cannot set the validity";
    if (!X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL))
        goto fail;
    step = "cannot set the public key";
    if (!X509_set_pubkey(x, pkey))
        goto fail;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    step = "cannot add the extensions";
    if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") < 0 ||
        add_san(x, hostname, !cn) < 0)
        goto fail;
    step = "cannot sign the certificate";
    if (X509_sign(x, pkey, EVP_sha256()) <= 0)
        goto fail;
    return x;
fail:
    *err_r = ossl_err(step);
    X509_free(x);
    return NULL;
}

int tls_cert_create_selfsigned(const char *cert_path, const char *key_path, const char *hostname,
                               unsigned days, const char **err_r)
{
    const char *err = NULL;
    if (!cert_path || !*cert_path || !key_path || !*key_path) {
        *err_r = "certificate and private key paths must not be empty";
        return -1;
    }
    if (strcmp(cert_path, key_path) == 0) {
        *err_r = errf("certificate and private key must be two files (both are %s)", cert_path);
        return -1;
    }
    if (!hostname || (!is_dns_name(hostname) && !is_ip_literal(hostname))) {
        *err_r = errf("cannot make a certificate for \"%s\": not a host name or IP address",
                      hostname ? hostname : "");
        return -1;
    }
    if (days == 0)
        days = TLS_CERT_DEFAULT_DAYS;
    if (days > TLS_CERT_MAX_DAYS) {
        *err_r = errf("validity of %u days is more than %u", days, TLS_CERT_MAX_DAYS);
        return -1;
    }
    if (path_exists(key_path) || path_exists(cert_path)) {
        *err_r = errf("%s already exists", path_exists(key_path) ? key_path : cert_path);
        return -1;
    }
    if (make_parent_dirs(key_path, 0700, err_r) < 0 || make_parent_dirs(cert_path, 0755, err_r) < 0)
        return -1;

    ERR_clear_error();
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    if (!pkey) {
        *err_r = ossl_err("cannot generate a P-256 key");
        return -1;
    }
    int ret = -1;
    X509 *x = build_cert(pkey, hostname, days, &err);
    if (x && write_pem(key_path, pkey, NULL, 0600, &err) == 0) {
        if (write_pem(cert_path, NULL, x, 0644, &err) == 0)
            ret = 0;
        else
            (void)unlink(key_path); /* ours: written a moment ago */
    }
    if (ret < 0)
        *err_r = err;
    X509_free(x);
    EVP_PKEY_free(pkey);
    return ret;
}
