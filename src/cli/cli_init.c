/* cli_init: `gannet init [--demo]` (design.md §4-§5) — make a fresh install runnable, and do
 * nothing harmful when run again:
 *   1. when the configuration file does not exist, write the development configuration there
 *      (loopback SMTP on 127.0.0.1:2525, submission with STARTTLS on 2587 and implicit TLS on
 *      2465, data in ./var) and say so;
 *   2. create the data directory with blobs/, spool/tmp/ and tls/;
 *   3. create or migrate the database (dir_db_migrate);
 *   4. create the default IP ranges when the iprange table is empty (dir_admin_iprange_defaults;
 *      ranges an admin deleted stay deleted unless every range is gone, since a server with no
 *      range admits nobody);
 *   5. when neither the [tls] certificate nor the key exists, create a self-signed certificate
 *      for [server] hostname (tls_cert.h) and say so; when only one of them exists, warn and
 *      leave both alone;
 *   6. with --demo, add domain example.test and account demo@example.test (password "demo")
 *      when absent, and print how to send a test mail.
 * Exit status per cli.h: 0, 1 runtime error, 64 usage, 78 configuration. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "dir/dir_admin.h"
#include "dir/dir_cache.h"
#include "dir/dir_db.h"
#include "dir/dir_sqlite.h"
#include "lib/xalloc.h"
#include "net/tls_cert.h"

#define DEMO_DOMAIN "example.test"
#define DEMO_ACCOUNT "demo@example.test"
#define DEMO_PASSWORD "demo"

static const char init_usage[] =
    "usage: gannet [-c CONFIG] init [--demo]\n"
    "\n"
    "Create the data directory (blobs/, spool/tmp/, tls/), the database (or bring its schema\n"
    "up to date) and the default IP ranges. Safe to run again: nothing existing is changed.\n"
    "When CONFIG does not exist, a development configuration is written there first\n"
    "(SMTP on 127.0.0.1:2525 without TLS; submission on 127.0.0.1:2587 with STARTTLS and on\n"
    "127.0.0.1:2465 with TLS, both requiring login; data in ./var).\n"
    "When neither the [tls] certificate nor its key exists, a self-signed certificate for the\n"
    "[server] hostname is created (replace it with a real one for production).\n"
    "\n"
    "  --demo   also create domain " DEMO_DOMAIN " with account " DEMO_ACCOUNT " (password\n"
    "           \"" DEMO_PASSWORD "\") if absent, and print how to send it a test mail\n";

static const char dev_config[] = "; Gannet development configuration, written by `gannet init`.\n"
                                 "; Paths are relative to the directory gannet runs in.\n"
                                 "[server]\n"
                                 "hostname = localhost\n"
                                 "data_dir = ./var\n"
                                 "database = ./var/gannet.db\n"
                                 "[tls]\n"
                                 "certificate = ./var/tls/cert.pem\n"
                                 "private_key = ./var/tls/key.pem\n"
                                 "[listener:mx]\n"
                                 "protocol = smtp\n"
                                 "address = 127.0.0.1:2525\n"
                                 "security = none\n"
                                 "; mail clients: log in, then send (docs/clients.md)\n"
                                 "[listener:submission]\n"
                                 "protocol = smtp\n"
                                 "address = 127.0.0.1:2587\n"
                                 "security = starttls\n"
                                 "require_auth = yes\n"
                                 "[listener:submissions]\n"
                                 "protocol = smtp\n"
                                 "address = 127.0.0.1:2465\n"
                                 "security = tls\n"
                                 "require_auth = yes\n"
                                 "[smtp]\n"
                                 "max_message_size = 20480\n"
                                 "timeout = 10m\n";

/* mkdir -p path with mode for the directories it creates. Returns 0 or -1 (errno set). */
static int mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int ret = 0;
    for (char *s = p + 1; ret == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        struct stat st;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            ret = -1;
        else if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            ret = -1;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return ret;
}

/* Create dirname(path) (mkdir -p); "" or "." need nothing. */
static int mkdir_parent(const char *path, mode_t mode)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int ret = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        ret = mkdir_p(dir, mode);
    }
    free(dir);
    return ret;
}

static int write_dev_config(const char *path)
{
    if (mkdir_parent(path, 0755) < 0) {
        fprintf(stderr, "gannet: cannot create the directory of %s: %s\n", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "gannet: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(dev_config);
    ssize_t w = write(fd, dev_config, n);
    if (w != (ssize_t)n || fsync(fd) < 0) {
        fprintf(stderr, "gannet: cannot write %s: %s\n", path,
                w < 0 ? strerror(errno) : "short write");
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    printf("wrote a development configuration to %s\n", path);
    return 0;
}

static int make_dirs(const struct conf *conf)
{
    static const struct {
        const char *sub;
        mode_t mode;
    } subs[] = {{"", 0750}, {"/blobs", 0750}, {"/spool/tmp", 0750}, {"/tls", 0700}};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char *dir = xasprintf("%s%s", conf->data_dir, subs[i].sub);
        int r = mkdir_p(dir, subs[i].mode);
        if (r < 0)
            fprintf(stderr, "gannet: cannot create directory %s: %s\n", dir, strerror(errno));
        free(dir);
        if (r < 0)
            return -1;
    }
    if (mkdir_parent(conf->database, 0750) < 0) {
        fprintf(stderr, "gannet: cannot create the directory of %s: %s\n", conf->database,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* Create a self-signed certificate when neither file exists. Returns 0 or the exit status. */
static int make_certificate(const struct conf *conf)
{
    struct stat st;
    bool have_cert = lstat(conf->certificate, &st) == 0;
    bool have_key = lstat(conf->private_key, &st) == 0;
    if (have_cert && have_key)
        return 0;
    if (have_cert || have_key) {
        fprintf(stderr,
                "gannet: warning: %s exists but %s does not; no certificate created "
                "(see [tls] certificate and private_key)\n",
                have_cert ? conf->certificate : conf->private_key,
                have_cert ? conf->private_key : conf->certificate);
        return 0;
    }
    const char *err = NULL;
    if (tls_cert_create_selfsigned(conf->certificate, conf->private_key, conf->hostname, 0, &err) <
        0)
        return cli_fail(err);
    printf("created a self-signed TLS certificate for %s in %s (replace it with a real one for "
           "production)\n",
           conf->hostname, conf->certificate);
    return 0;
}

/* The address a local client connects to for listener l. */
static const char *client_host(const struct conf_listener *l)
{
    const char *host = l->host;
    if (!host || !*host || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
        return "127.0.0.1";
    if (strcmp(host, "::") == 0)
        return "::1";
    return host;
}

/* Add the demo domain and account when absent. Returns 0 or the exit status. */
static int demo(sqlite3 *db, const char *config_path, const struct conf *conf)
{
    struct dir *d = dir_sqlite_new(db);
    struct dir_domain dom;
    struct dir_account acc;
    const char *err = NULL;
    int rc = 0;
    enum dir_result r = dir_domain_get(d, DEMO_DOMAIN, &dom);
    if (r == DIR_NOTFOUND) {
        struct dir_admin_domain o = {.enabled = DIR_ADMIN_KEEP, .max_message_kb = DIR_ADMIN_KEEP};
        if (dir_admin_domain_add(db, DEMO_DOMAIN, &o, &err) < 0)
            rc = cli_fail(err);
        else
            printf("created domain " DEMO_DOMAIN "\n");
    } else if (r != DIR_OK) {
        rc = cli_fail("cannot read the directory (see the log above)");
    }
    if (rc == 0 && (r = dir_account_get(d, DEMO_ACCOUNT, &acc)) == DIR_NOTFOUND) {
        struct dir_admin_account o = {.password = DEMO_PASSWORD,
                                      .enabled = DIR_ADMIN_KEEP,
                                      .quota_mb = DIR_ADMIN_KEEP,
                                      .keep_copy = DIR_ADMIN_KEEP};
        if (dir_admin_account_add(db, DEMO_ACCOUNT, &o, &err) < 0)
            rc = cli_fail(err);
        else
            printf("created account " DEMO_ACCOUNT " with password \"" DEMO_PASSWORD "\"\n");
    } else if (rc == 0 && r != DIR_OK) {
        rc = cli_fail("cannot read the directory (see the log above)");
    }
    dir_close(&d);
    if (rc != 0)
        return rc;

    const struct conf_listener *smtp = NULL;
    for (size_t i = 0; i < conf->listeners_count && !smtp; i++)
        if (conf->listeners[i].protocol == CONF_PROTO_SMTP)
            smtp = &conf->listeners[i];
    printf("\ndemo: account " DEMO_ACCOUNT " (password \"" DEMO_PASSWORD "\")\n");
    if (!smtp) {
        printf("no SMTP listener is configured in %s: add a [listener:NAME] section first\n",
               config_path);
        return 0;
    }
    printf("start the server:  gannet -c %s serve\n"
           "send a test mail:  swaks --server %s --port %d --from someone@example.org "
           "--to " DEMO_ACCOUNT "\n",
           config_path, client_host(smtp), smtp->port);
    /* A submission listener (login over TLS) when there is one. */
    for (size_t i = 0; i < conf->listeners_count; i++) {
        const struct conf_listener *l = &conf->listeners[i];
        if (l->protocol != CONF_PROTO_SMTP || !l->require_auth || l->security == CONF_SECURITY_NONE)
            continue;
        printf("or log in first:   swaks --server %s --port %d %s --auth-user " DEMO_ACCOUNT
               " --auth-password " DEMO_PASSWORD " --from " DEMO_ACCOUNT " --to " DEMO_ACCOUNT "\n",
               client_host(l), l->port, l->security == CONF_SECURITY_TLS ? "--tlsc" : "--tls");
        break;
    }
    printf("read it:           gannet -c %s mailbox list " DEMO_ACCOUNT "\n", config_path);
    return 0;
}

int cli_init(const char *config_path, int argc, char **argv)
{
    static const struct cli_opt opts[] = {{"--demo", 0, false}, {NULL, 0, false}};
    static const char *const pos[] = {NULL};
    struct cli_args a;
    struct conf *conf = NULL;
    sqlite3 *db = NULL;
    int rc = cli_args_begin(&a, "gannet init", init_usage, opts, pos, 0, argc, argv);
    if (rc >= 0)
        goto out;
    rc = 1;
    struct stat st;
    if (stat(config_path, &st) < 0) {
        if (errno != ENOENT) {
            fprintf(stderr, "gannet: %s: %s\n", config_path, strerror(errno));
            goto out;
        }
        if (write_dev_config(config_path) < 0)
            goto out;
    }
    char *errors = NULL;
    conf = conf_load(config_path, &errors);
    if (!conf) {
        fputs(errors ? errors : "gannet: cannot load the configuration\n", stderr);
        free(errors);
        rc = CLI_EX_CONFIG;
        goto out;
    }
    free(errors);
    if (make_dirs(conf) < 0)
        goto out;
    const char *err = NULL;
    if (!(db = dir_db_open(conf->database, true, &err)) || dir_db_migrate(db, &err) < 0) {
        cli_fail(err);
        goto out;
    }
    printf("data directory %s, database %s (schema %d)\n", conf->data_dir, conf->database,
           dir_db_schema_version());
    int created = 0;
    if (dir_admin_iprange_defaults(db, &created, &err) < 0) {
        cli_fail(err);
        goto out;
    }
    if (created > 0)
        printf("created the default IP ranges (gannet -c %s iprange list)\n", config_path);
    if ((rc = make_certificate(conf)) != 0)
        goto out;
    rc = cli_args_has(&a, "--demo") ? demo(db, config_path, conf) : 0;
    dir_cache_bump_if_changed(db, conf->data_dir); /* a running server sees it at once */
out:
    dir_db_close(&db);
    conf_free(&conf);
    cli_args_free(&a);
    return rc;
}
