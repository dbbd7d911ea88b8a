/* test_conf: the configuration file module (src/conf/conf.c) and docs/configuration.md.
 *
 * Table-driven: value syntaxes (durations, booleans), good files and the values they give, bad
 * files and the exact "file:line: message" text for each error (all errors, sorted by line),
 * loading from disk (missing file, directory, NUL byte), derived defaults, listeners (IPv4, IPv6,
 * "*", localhost), and the reference table against docs/configuration.md so the two cannot
 * drift. Runs with the repository root as working directory (meson test workdir). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "lib/log.h"

#define DOC_PATH "docs/configuration.md"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run from the repository root)", path);
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        size_t n = fread(data + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    data[len] = '\0';
    return data;
}

static char *reference_text(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    conf_write_reference(f);
    fclose(f);
    return text;
}

/* ---- value syntaxes ---------------------------------------------------------------------- */

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int ret;
        unsigned secs;
    } cases[] = {
        {"30s", 0, 30},
        {"10m", 0, 600},
        {"24h", 0, 86400},
        {"36d", 0, 36 * 86400},
        {"90", 0, 90},
        {"0", 0, 0},
        {"0s", 0, 0},
        {"007m", 0, 420},
        {"4294967295", 0, 4294967295u},
        {"49710d", 0, 49710u * 86400u},
        {"4294967296", -1, 0},
        {"49711d", -1, 0},
        {"99999999999999999999999s", -1, 0},
        {"", -1, 0},
        {"s", -1, 0},
        {"-5", -1, 0},
        {"-5m", -1, 0},
        {"+5", -1, 0},
        {" 5", -1, 0},
        {"5 m", -1, 0},
        {"5m ", -1, 0},
        {"10M", -1, 0},
        {"1h30m", -1, 0},
        {"10x", -1, 0},
        {"1.5h", -1, 0},
        {"ten minutes", -1, 0},
        {"0x10", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned secs = 12345;
        int r = conf_parse_duration(cases[i].in, &secs);
        if (r != cases[i].ret)
            fail_msg("duration \"%s\": returned %d, expected %d", cases[i].in, r, cases[i].ret);
        if (r == 0 && secs != cases[i].secs)
            fail_msg("duration \"%s\": %u seconds, expected %u", cases[i].in, secs, cases[i].secs);
        if (r < 0)
            assert_int_equal(secs, 12345); /* untouched on failure */
    }
}

static void test_bools(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int ret;
        bool value;
    } cases[] = {
        {"yes", 0, true},    {"YES", 0, true},     {"true", 0, true},      {"True", 0, true},
        {"on", 0, true},     {"1", 0, true},       {"no", 0, false},       {"No", 0, false},
        {"false", 0, false}, {"FALSE", 0, false},  {"off", 0, false},      {"0", 0, false},
        {"", -1, false},     {"y", -1, false},     {"n", -1, false},       {"2", -1, false},
        {"yes ", -1, false}, {"maybe", -1, false}, {"enabled", -1, false}, {"01", -1, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool v = !cases[i].value;
        int r = conf_parse_bool(cases[i].in, &v);
        if (r != cases[i].ret)
            fail_msg("bool \"%s\": returned %d, expected %d", cases[i].in, r, cases[i].ret);
        if (r == 0 && v != cases[i].value)
            fail_msg("bool \"%s\": wrong value", cases[i].in);
    }
}

/* ---- defaults ---------------------------------------------------------------------------- */

static void check_defaults(const struct conf *c)
{
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    assert_string_equal(c->hostname, *host ? host : "localhost");
    assert_string_equal(c->data_dir, "/var/lib/gannet");
    assert_string_equal(c->database, "/var/lib/gannet/gannet.db");
    assert_string_equal(c->user, "");
    assert_string_equal(c->log_level, "info");
    assert_int_equal(conf_log_level(c), LOG_LEVEL_INFO);
    assert_string_equal(c->nameservers, "");
    assert_string_equal(c->certificate, "/var/lib/gannet/tls/cert.pem");
    assert_string_equal(c->private_key, "/var/lib/gannet/tls/key.pem");
    assert_string_equal(c->welcome, "");
    assert_int_equal(c->max_message_size_kb, 20480);
    assert_int_equal(c->timeout_s, 600);
    assert_true(c->allow_null_sender);
    assert_false(c->reject_bare_lf);
    assert_int_equal(c->max_recipients, 1000);
    assert_false(c->disconnect_invalid_clients);
    assert_int_equal(c->max_invalid_commands, 100);
    assert_int_equal(c->max_connections, 0);
    assert_false(c->add_delivered_to);
    assert_true(c->autoban_enabled);
    assert_int_equal(c->autoban_max_attempts, 3);
    assert_int_equal(c->autoban_window_s, 1800);
    assert_int_equal(c->autoban_ban_s, 3600);
    assert_int_equal(c->listeners_count, 0);
    assert_null(c->listeners);
}

static void test_defaults(void **state)
{
    (void)state;
    struct conf *c = conf_defaults();
    assert_non_null(c);
    check_defaults(c);
    conf_free(&c);
    assert_null(c);
    conf_free(&c); /* freeing NULL is a no-op */

    /* An empty file, and one with only comments, give the same defaults. */
    static const char *const empty[] = {"", "\n\n", "; comment\n# comment\n   \n",
                                        "[smtp]\n[server]\n[dns]\n[tls]\n[autoban]\n"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        char *errors = (char *)"unset";
        c = conf_load_string(empty[i], "t.conf", &errors);
        assert_non_null(c);
        assert_null(errors);
        check_defaults(c);
        assert_string_equal(c->path, "t.conf");
        conf_free(&c);
    }
}

/* ---- good files -------------------------------------------------------------------------- */

/* design.md §5, verbatim: the contract example must load. */
static const char design_example[] =
    "[server]\n"
    "hostname = mx.example.test          ; default: gethostname()\n"
    "data_dir = ./var                    ; message files, database, spool\n"
    "database = ./var/gannet.db          ; sqlite path (postgresql://... later)\n"
    "user =                              ; drop privileges to this user after binding (empty: "
    "stay)\n"
    "[dns]\n"
    "nameservers = 127.0.0.1:5353        ; default: /etc/resolv.conf\n"
    "[tls]\n"
    "certificate = ./var/tls/cert.pem\n"
    "private_key = ./var/tls/key.pem\n"
    "[listener:mx]                       ; any number of [listener:NAME] sections\n"
    "protocol = smtp                     ; smtp | pop3 | imap\n"
    "address = 127.0.0.1:2525            ; host:port, [v6]:port\n"
    "security = none                     ; none | starttls | starttls-required | tls\n"
    "[smtp]\n"
    "welcome =                           ; banner text; default hostname\n"
    "max_message_size = 20480            ; KB, 0 = unlimited\n"
    "timeout = 10m                       ; durations everywhere: 30s, 10m, 24h, 36d\n";

static void check_design_example(const struct conf *c)
{
    assert_string_equal(c->hostname, "mx.example.test");
    assert_string_equal(c->data_dir, "./var");
    assert_string_equal(c->database, "./var/gannet.db");
    assert_string_equal(c->user, "");
    assert_string_equal(c->nameservers, "127.0.0.1:5353");
    assert_string_equal(c->certificate, "./var/tls/cert.pem");
    assert_string_equal(c->private_key, "./var/tls/key.pem");
    assert_string_equal(c->welcome, "");
    assert_int_equal(c->max_message_size_kb, 20480);
    assert_int_equal(c->timeout_s, 600);
    assert_int_equal(c->listeners_count, 1);
    const struct conf_listener *l = &c->listeners[0];
    assert_string_equal(l->name, "mx");
    assert_int_equal(l->protocol, CONF_PROTO_SMTP);
    assert_string_equal(l->address, "127.0.0.1:2525");
    assert_string_equal(l->host, "127.0.0.1");
    assert_int_equal(l->port, 2525);
    assert_int_equal(l->security, CONF_SECURITY_NONE);
    assert_false(l->require_auth);
    assert_int_equal(l->line, 11);
}

static void check_smtp_values(const struct conf *c)
{
    assert_string_equal(c->welcome, "mail.example.test ready");
    assert_int_equal(c->max_message_size_kb, 0);
    assert_int_equal(c->timeout_s, 30);
    assert_false(c->allow_null_sender);
    assert_true(c->reject_bare_lf);
    assert_int_equal(c->max_recipients, 1);
    assert_true(c->disconnect_invalid_clients);
    assert_int_equal(c->max_invalid_commands, 1000000);
    assert_int_equal(c->max_connections, 500);
    assert_true(c->add_delivered_to);
}

static void check_autoban_values(const struct conf *c)
{
    assert_false(c->autoban_enabled);
    assert_int_equal(c->autoban_max_attempts, 1000);
    assert_int_equal(c->autoban_window_s, 5);
    assert_int_equal(c->autoban_ban_s, 0);
}

static void check_three_listeners(const struct conf *c)
{
    assert_int_equal(c->listeners_count, 3);
    const struct conf_listener *mx = &c->listeners[0], *sub = &c->listeners[1],
                               *smtps = &c->listeners[2];
    assert_string_equal(mx->name, "mx");
    assert_string_equal(mx->host, "*");
    assert_int_equal(mx->port, 25);
    assert_int_equal(mx->security, CONF_SECURITY_STARTTLS);
    assert_false(mx->require_auth);
    assert_int_equal(mx->line, 1);
    assert_string_equal(sub->name, "submission");
    assert_string_equal(sub->address, "[::1]:2525");
    assert_string_equal(sub->host, "::1");
    assert_int_equal(sub->port, 2525);
    assert_int_equal(sub->security, CONF_SECURITY_STARTTLS_REQUIRED);
    assert_true(sub->require_auth);
    assert_int_equal(sub->line, 4);
    assert_string_equal(smtps->name, "Smtps_1.x");
    assert_string_equal(smtps->host, "localhost");
    assert_int_equal(smtps->port, 65535);
    assert_int_equal(smtps->security, CONF_SECURITY_TLS);
    assert_int_equal(smtps->protocol, CONF_PROTO_SMTP);
}

static void check_protocols(const struct conf *c)
{
    assert_int_equal(c->listeners_count, 3);
    assert_int_equal(c->listeners[0].protocol, CONF_PROTO_POP3);
    assert_int_equal(c->listeners[1].protocol, CONF_PROTO_IMAP);
    assert_int_equal(c->listeners[1].security, CONF_SECURITY_TLS);
    assert_int_equal(c->listeners[2].protocol, CONF_PROTO_SMTP);
    assert_string_equal(c->listeners[2].host, "0.0.0.0");
}

static void check_nameservers(const struct conf *c)
{
    assert_string_equal(c->nameservers, "127.0.0.1:5353,[::1]:53,::1,8.8.8.8,[2001:db8::1]");
}

static void check_derived_slash(const struct conf *c)
{
    assert_string_equal(c->data_dir, "./var/");
    assert_string_equal(c->database, "./var/gannet.db");
    assert_string_equal(c->certificate, "./var/tls/cert.pem");
    assert_string_equal(c->private_key, "/etc/ssl/k.pem");
}

static void check_derived_root(const struct conf *c)
{
    assert_string_equal(c->database, "/gannet.db");
    assert_string_equal(c->certificate, "/tls/cert.pem");
}

static void check_server(const struct conf *c)
{
    assert_string_equal(c->hostname, "MX-1.Example_Test.org");
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(conf_log_level(c), LOG_LEVEL_DEBUG);
    assert_string_equal(c->user, "gannet");
    assert_string_equal(c->database, "/srv/db.sqlite");
}

static void check_warning(const struct conf *c)
{
    assert_string_equal(c->log_level, "warning");
    assert_int_equal(conf_log_level(c), LOG_LEVEL_WARN);
}

static void check_syntax_variants(const struct conf *c)
{
    assert_int_equal(c->timeout_s, 300);
    assert_int_equal(c->max_recipients, 7);
    assert_true(c->reject_bare_lf);
    assert_string_equal(c->welcome, "hi; there");
    assert_int_equal(c->listeners_count, 1);
    assert_string_equal(c->listeners[0].address, "127.0.0.1:2525");
}

static void check_long_line(const struct conf *c)
{
    assert_int_equal(strlen(c->welcome), 198 - strlen("welcome = "));
}

static char long_ok[256];

static void test_good(void **state)
{
    (void)state;
    memset(long_ok, 0, sizeof(long_ok));
    memcpy(long_ok, "[smtp]\nwelcome = ", 17);
    memset(long_ok + 17, 'w', 198 - 10);
    long_ok[17 + 188] = '\n';

    const struct {
        const char *text;
        void (*check)(const struct conf *);
    } cases[] = {
        {design_example, check_design_example},
        {"[smtp]\nwelcome = mail.example.test ready\nmax_message_size = 0\ntimeout = 30s\n"
         "allow_null_sender = no\nreject_bare_lf = yes\nmax_recipients = 1\n"
         "disconnect_invalid_clients = on\nmax_invalid_commands = 1000000\n"
         "max_connections = 500\nadd_delivered_to = true\n",
         check_smtp_values},
        {"[AutoBan]\nenabled = off\nmax_attempts = 1000\nwindow = 5s\nban = 0\n",
         check_autoban_values},
        {"[listener:mx]\naddress = *:25\nsecurity = starttls\n"
         "[listener:submission]\naddress = [::1]:2525\nsecurity = starttls-required\n"
         "require_auth = yes\n"
         "[listener:Smtps_1.x]\naddress = LOCALHOST:65535\nsecurity = TLS\nprotocol = SMTP\n",
         check_three_listeners},
        {"[listener:pop]\nprotocol = pop3\naddress = 127.0.0.1:110\n"
         "[listener:imaps]\nprotocol = imap\naddress = 127.0.0.1:993\nsecurity = tls\n"
         "[listener:any4]\naddress = 0.0.0.0:25\n",
         check_protocols},
        {"[dns]\nnameservers = 127.0.0.1:5353, [::1]:53  ::1,8.8.8.8\t[2001:db8::1]\n",
         check_nameservers},
        {"[server]\ndata_dir = ./var/\n[tls]\nprivate_key = /etc/ssl/k.pem\n", check_derived_slash},
        {"[server]\ndata_dir = /\n", check_derived_root},
        {"[server]\nhostname = MX-1.Example_Test.org\nlog_level = DEBUG\nuser = gannet\n"
         "database = /srv/db.sqlite\n",
         check_server},
        {"[server]\nlog_level = warning\n", check_warning},
        /* CRLF, a BOM, ':' separators, indentation, case-insensitive names, inline comments,
         * a ';' inside a value, a section reopened with other keys. */
        {"\xEF\xBB\xBF[SMTP]\r\n  Timeout: 5m ; five minutes\r\n\tmax_recipients=7\r\n"
         "[listener:a]\r\naddress = 127.0.0.1:2525\r\n"
         "[smtp]   ; again\r\nreject_bare_lf = YES\r\nwelcome = hi; there ; comment\r\n",
         check_syntax_variants},
        {long_ok, check_long_line},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *errors = NULL;
        struct conf *c = conf_load_string(cases[i].text, "good.conf", &errors);
        if (!c)
            fail_msg("good case %zu failed:\n%s", i, errors ? errors : "(no errors?)");
        assert_null(errors);
        cases[i].check(c);
        conf_free(&c);
    }
}

/* ---- bad files: exact messages ----------------------------------------------------------- */

static void test_bad(void **state)
{
    (void)state;
    char long_bad[300];
    memset(long_bad, 0, sizeof(long_bad));
    memcpy(long_bad, "[smtp]\nwelcome = ", 17);
    memset(long_bad + 17, 'w', 199 - 10);
    long_bad[17 + 189] = '\n';

    const struct {
        const char *text;
        const char *errors;
    } cases[] = {
        /* the formats named in the design */
        {"[smtp]\n\n\ntimeout = ten minutes\n",
         "t.conf:4: [smtp] timeout: invalid duration \"ten minutes\" (use e.g. 30s, 10m, 24h, "
         "36d)\n"},
        {"[smtp]\nfoo = 1\n", "t.conf:2: unknown key \"foo\" in [smtp]\n"},
        {"; top\n[bogus]\nx = 1\ny = 2\n", "t.conf:2: unknown section [bogus]\n"},
        {"[smtp]\nmax_message_size = 2097152\n",
         "t.conf:2: [smtp] max_message_size: must be between 0 and 2097151\n"},
        {"[listener:mx]\naddress = 127.0.0.1:25\nsecurity = ssl\n",
         "t.conf:3: [listener:mx] security: must be one of none, starttls, starttls-required, "
         "tls\n"},
        /* numbers */
        {"[smtp]\nmax_message_size = -1\n",
         "t.conf:2: [smtp] max_message_size: must be between 0 and 2097151\n"},
        {"[smtp]\nmax_message_size = 99999999999999999999999999\n",
         "t.conf:2: [smtp] max_message_size: must be between 0 and 2097151\n"},
        {"[smtp]\nmax_message_size = 20MB\n",
         "t.conf:2: [smtp] max_message_size: invalid number \"20MB\"\n"},
        {"[smtp]\nmax_recipients =\n", "t.conf:2: [smtp] max_recipients: invalid number \"\"\n"},
        {"[smtp]\nmax_recipients = 0\n",
         "t.conf:2: [smtp] max_recipients: must be between 1 and 1000000\n"},
        {"[autoban]\nmax_attempts = 0\n",
         "t.conf:2: [autoban] max_attempts: must be between 1 and 1000\n"},
        {"[autoban]\nwindow = 0\n", "t.conf:2: [autoban] window: must be between 1s and 7d\n"},
        {"[autoban]\nban = 366d\n", "t.conf:2: [autoban] ban: must be between 0s and 365d\n"},
        {"[smtp]\nmax_connections = 1e3\n",
         "t.conf:2: [smtp] max_connections: invalid number \"1e3\"\n"},
        /* durations and booleans */
        {"[smtp]\ntimeout = 0\n", "t.conf:2: [smtp] timeout: must be between 1s and 1d\n"},
        {"[smtp]\ntimeout = 25h\n", "t.conf:2: [smtp] timeout: must be between 1s and 1d\n"},
        {"[smtp]\ntimeout = -5m\n",
         "t.conf:2: [smtp] timeout: invalid duration \"-5m\" (use e.g. 30s, 10m, 24h, 36d)\n"},
        {"[smtp]\ntimeout =\n",
         "t.conf:2: [smtp] timeout: invalid duration \"\" (use e.g. 30s, 10m, 24h, 36d)\n"},
        {"[smtp]\nreject_bare_lf = maybe\n",
         "t.conf:2: [smtp] reject_bare_lf: invalid boolean \"maybe\" (use yes or no)\n"},
        /* strings and choices */
        {"[server]\nlog_level = verbose\n",
         "t.conf:2: [server] log_level: must be one of debug, info, warning, error\n"},
        {"[server]\ndata_dir =\n", "t.conf:2: [server] data_dir: must not be empty\n"},
        {"[server]\nhostname = mx example\n",
         "t.conf:2: [server] hostname: invalid host name \"mx example\"\n"},
        {"[server]\nhostname = -mx.example\n",
         "t.conf:2: [server] hostname: invalid host name \"-mx.example\"\n"},
        {"[server]\nhostname = mx..example\n",
         "t.conf:2: [server] hostname: invalid host name \"mx..example\"\n"},
        {"[dns]\nnameservers = 127.0.0.1:5353 resolver.example\n",
         "t.conf:2: [dns] nameservers: invalid nameserver \"resolver.example\" (use ip, ip:port "
         "or [ipv6]:port)\n"},
        {"[dns]\nnameservers = 127.0.0.1:0\n",
         "t.conf:2: [dns] nameservers: invalid nameserver \"127.0.0.1:0\" (use ip, ip:port or "
         "[ipv6]:port)\n"},
        {"[dns]\nnameservers = [127.0.0.1]:53\n",
         "t.conf:2: [dns] nameservers: invalid nameserver \"[127.0.0.1]:53\" (use ip, ip:port or "
         "[ipv6]:port)\n"},
        {"[dns]\nnameservers = [::1]:\n",
         "t.conf:2: [dns] nameservers: invalid nameserver \"[::1]:\" (use ip, ip:port or "
         "[ipv6]:port)\n"},
        /* listener sections */
        {"[listener:mx]\nprotocol = smtp\n",
         "t.conf:1: [listener:mx] address: missing (every listener needs one, e.g. "
         "127.0.0.1:2525)\n"},
        {"[listener:mx]\nprotocol = lmtp\naddress = 127.0.0.1:25\n",
         "t.conf:2: [listener:mx] protocol: must be one of smtp, pop3, imap\n"},
        {"[listener:a]\naddress = 127.0.0.1:25\n\n[listener:a]\naddress = 127.0.0.1:26\n",
         "t.conf:4: duplicate section [listener:a] (first on line 1)\n"},
        {"[listener:a]\naddress = 127.0.0.1:25\n[listener:b]\naddress = 127.0.0.1:25\n",
         "t.conf:4: [listener:b] address: 127.0.0.1:25 is already used by [listener:a]\n"},
        {"[listener]\naddress = 127.0.0.1:25\n",
         "t.conf:1: section [listener] needs a name: [listener:NAME]\n"},
        {"[listener:]\n",
         "t.conf:1: invalid listener name \"\" (use up to 64 letters, digits, '.', '-' and "
         "'_')\n"},
        {"[listener:a b]\n",
         "t.conf:1: invalid listener name \"a b\" (use up to 64 letters, digits, '.', '-' and "
         "'_')\n"},
        {"[listener:a]\naddress = 127.0.0.1:25\nfoo = bar\n",
         "t.conf:3: unknown key \"foo\" in [listener:a]\n"},
        {"[listener:a]\naddress = 127.0.0.1:0\n",
         "t.conf:2: [listener:a] address: invalid port \"0\" (must be between 1 and 65535)\n"},
        {"[listener:a]\naddress = 127.0.0.1:65536\n",
         "t.conf:2: [listener:a] address: invalid port \"65536\" (must be between 1 and 65535)\n"},
        {"[listener:a]\naddress = 127.0.0.1:smtp\n",
         "t.conf:2: [listener:a] address: invalid port \"smtp\" (must be between 1 and 65535)\n"},
        {"[listener:a]\naddress = 127.0.0.1\n",
         "t.conf:2: [listener:a] address: invalid address \"127.0.0.1\" (use host:port, "
         "[ipv6]:port or *:port)\n"},
        {"[listener:a]\naddress = :25\n",
         "t.conf:2: [listener:a] address: invalid address \":25\" (use host:port, [ipv6]:port or "
         "*:port)\n"},
        {"[listener:a]\naddress = 127.0.0.1:\n",
         "t.conf:2: [listener:a] address: invalid address \"127.0.0.1:\" (use host:port, "
         "[ipv6]:port or *:port)\n"},
        {"[listener:a]\naddress = [::1]2525\n",
         "t.conf:2: [listener:a] address: invalid address \"[::1]2525\" (use host:port, "
         "[ipv6]:port or *:port)\n"},
        {"[listener:a]\naddress = ::1:2525\n",
         "t.conf:2: [listener:a] address: invalid address \"::1:2525\" (write an IPv6 address in "
         "brackets: [::1]:2525)\n"},
        {"[listener:a]\naddress = [127.0.0.1]:25\n",
         "t.conf:2: [listener:a] address: invalid host \"127.0.0.1\" (use an IP address, * or "
         "localhost)\n"},
        {"[listener:a]\naddress = mx.example.test:25\n",
         "t.conf:2: [listener:a] address: invalid host \"mx.example.test\" (use an IP address, * "
         "or localhost)\n"},
        /* file structure */
        {"timeout = 10m\n[smtp]\n", "t.conf:1: key \"timeout\" outside of any [section]\n"},
        {"[smtp]\ntimeout = 1m\nTIMEOUT = 2m\n",
         "t.conf:3: [smtp] timeout: set twice (first on line 2)\n"},
        {"[smtp]\ntimeout = 1m\n[smtp]\ntimeout = 2m\n",
         "t.conf:4: [smtp] timeout: set twice (first on line 2)\n"},
        {"[smtp]\njust some words\n",
         "t.conf:2: expected \"key = value\", \"[section]\" or a comment\n"},
        {"[smtp]\n= 5\n", "t.conf:2: missing key name before \"=\"\n"},
        {"[smtp\ntimeout = 1m\n", "t.conf:1: malformed section header [smtp (missing \"]\")\n"},
        {"[smtp] extra\n", "t.conf:1: unexpected text after section header: extra\n"},
        {"[smtp:x]\n", "t.conf:1: unknown section [smtp:x]\n"},
        {long_bad, "t.conf:2: line too long (at most 198 characters)\n"},
        /* sections later issues add are errors until then */
        {"[spamassassin]\n", "t.conf:1: unknown section [spamassassin]\n"},
        {"[antispam]\n", "t.conf:1: unknown section [antispam]\n"},
        {"[greylisting]\n", "t.conf:1: unknown section [greylisting]\n"},
        {"[spf]\n", "t.conf:1: unknown section [spf]\n"},
        {"[autoban:x]\n", "t.conf:1: unknown section [autoban:x]\n"},
        {"[spamassassin]\n", "t.conf:1: unknown section [spamassassin]\n"},
        {"[dnsbl:zen.spamhaus.org]\n", "t.conf:1: unknown section [dnsbl:zen.spamhaus.org]\n"},
        {"[surbl:multi.surbl.org]\n", "t.conf:1: unknown section [surbl:multi.surbl.org]\n"},
        {"[scripting]\n", "t.conf:1: unknown section [scripting]\n"},
        /* every error is reported, in line order (the missing address is found at the end but
         * sorted to its section line) */
        {"[server]\nlog_level = loud\n[smtp]\ntimeout = forever\nbogus = 1\n"
         "[listener:mx]\nsecurity = tls\n[nope]\nkey = 1\n[smtp]\nmax_recipients = x\n"
         "no equals sign here\n",
         "t.conf:2: [server] log_level: must be one of debug, info, warning, error\n"
         "t.conf:4: [smtp] timeout: invalid duration \"forever\" (use e.g. 30s, 10m, 24h, 36d)\n"
         "t.conf:5: unknown key \"bogus\" in [smtp]\n"
         "t.conf:6: [listener:mx] address: missing (every listener needs one, e.g. "
         "127.0.0.1:2525)\n"
         "t.conf:8: unknown section [nope]\n"
         "t.conf:11: [smtp] max_recipients: invalid number \"x\"\n"
         "t.conf:12: expected \"key = value\", \"[section]\" or a comment\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *errors = NULL;
        struct conf *c = conf_load_string(cases[i].text, "t.conf", &errors);
        if (c) {
            conf_free(&c);
            fail_msg("bad case %zu loaded without errors; expected:\n%s", i, cases[i].errors);
        }
        assert_non_null(errors);
        if (strcmp(errors, cases[i].errors) != 0)
            fail_msg("bad case %zu:\n got: %s want: %s", i, errors, cases[i].errors);
        free(errors);
        /* errors_r may be NULL */
        assert_null(conf_load_string(cases[i].text, "t.conf", NULL));
    }
}

/* ---- files on disk ----------------------------------------------------------------------- */

static char *write_temp(const char *content, size_t len)
{
    char *path = strdup("/tmp/test_conf_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_files(void **state)
{
    (void)state;
    char *errors = NULL;
    struct conf *c;

    /* missing file */
    c = conf_load("/nonexistent/gannet.conf", &errors);
    assert_null(c);
    assert_string_equal(errors,
                        "/nonexistent/gannet.conf: cannot read: No such file or directory\n");
    free(errors);

    /* a directory */
    c = conf_load("/tmp", &errors);
    assert_null(c);
    assert_string_equal(errors, "/tmp: cannot read: Is a directory\n");
    free(errors);

    /* a good file: the path is in the result */
    char *path = write_temp(design_example, strlen(design_example));
    c = conf_load(path, &errors);
    assert_non_null(c);
    assert_null(errors);
    assert_string_equal(c->path, path);
    check_design_example(c);
    conf_free(&c);
    unlink(path);
    free(path);

    /* errors name the file */
    static const char bad[] = "[smtp]\ntimeout = 1 week\n";
    path = write_temp(bad, sizeof(bad) - 1);
    c = conf_load(path, &errors);
    assert_null(c);
    char *want = NULL;
    assert_true(asprintf(&want,
                         "%s:2: [smtp] timeout: invalid duration \"1 week\" (use e.g. 30s, 10m, "
                         "24h, 36d)\n",
                         path) > 0);
    assert_string_equal(errors, want);
    free(want);
    free(errors);
    unlink(path);
    free(path);

    /* a NUL byte */
    static const char nul[] = "[smtp]\ntimeout = 1m\nwel\0come = x\n";
    path = write_temp(nul, sizeof(nul) - 1);
    c = conf_load(path, &errors);
    assert_null(c);
    assert_true(asprintf(&want, "%s:3: contains a NUL byte\n", path) > 0);
    assert_string_equal(errors, want);
    free(want);
    free(errors);
    unlink(path);
    free(path);

    /* no trailing newline, empty file */
    path = write_temp("[smtp]\ntimeout = 2m", 19);
    c = conf_load(path, &errors);
    assert_non_null(c);
    assert_int_equal(c->timeout_s, 120);
    conf_free(&c);
    unlink(path);
    free(path);
    path = write_temp("", 0);
    c = conf_load(path, &errors);
    assert_non_null(c);
    check_defaults(c);
    conf_free(&c);
    unlink(path);
    free(path);
}

/* ---- reference table and docs ------------------------------------------------------------ */

static void test_reference(void **state)
{
    (void)state;
    char *ref = reference_text();
    /* header, separator, and one row per setting */
    static const char *const keys[] = {
        "hostname",
        "data_dir",
        "database",
        "user",
        "log_level",
        "directory_cache",
        "nameservers",
        "certificate",
        "private_key",
        "welcome",
        "max_message_size",
        "timeout",
        "allow_null_sender",
        "reject_bare_lf",
        "max_recipients",
        "disconnect_invalid_clients",
        "max_invalid_commands",
        "max_connections",
        "add_delivered_to",
        "enabled",
        "max_attempts",
        "window",
        "ban",
        "retries",
        "retry_interval",
        "security",
        "relay_host",
        "relay_port",
        "relay_user",
        "relay_password",
        "relay_security",
        "ca_file",
        "max_connections",
        "max_per_domain",
        "timeout",
        "protocol",
        "address",
        "security",
        "require_auth",
    };
    size_t rows = 0;
    for (const char *p = ref; (p = strchr(p, '\n')) != NULL; p++)
        rows++;
    assert_int_equal(rows, 2 + sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char needle[80];
        snprintf(needle, sizeof(needle), " | `%s` | ", keys[i]);
        if (!strstr(ref, needle))
            fail_msg("reference has no row for %s", keys[i]);
    }
    assert_non_null(strstr(ref, "| `[smtp]` | `timeout` | duration, 1s–1d | `10m` | "));
    assert_non_null(strstr(ref, "| `[listener:NAME]` | `security` | one of `none`, `starttls`, "
                                "`starttls-required`, `tls` | `none` | "));
    assert_non_null(strstr(ref, "| `[server]` | `database` | text | (empty) | SQLite database "
                                "file; empty = &lt;data_dir&gt;/gannet.db |"));
    free(ref);
}

/* Every key of the table appears in docs/configuration.md, and the reference table there is
 * exactly what conf_write_reference() writes today. */
static void test_docs(void **state)
{
    (void)state;
    char *doc = read_file(DOC_PATH);
    char *ref = reference_text();
    size_t keys = 0;
    for (char *line = ref; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        /* "| `[section]` | `key` | ..." */
        char *k = strstr(line, "` | `");
        if (k && strncmp(line, "| `[", 4) == 0) {
            k += 5;
            char *end = strchr(k, '`');
            assert_non_null(end);
            char needle[128];
            snprintf(needle, sizeof(needle), "`%.*s`", (int)(end - k), k);
            if (!strstr(doc, needle))
                fail_msg("%s does not mention %s", DOC_PATH, needle);
            keys++;
        }
        *nl = '\n';
        line = nl + 1;
    }
    assert_true(keys >= 22);
    if (!strstr(doc, ref))
        fail_msg("the reference table in %s is out of date: replace it with the output of "
                 "`gannet check-config --reference`",
                 DOC_PATH);
    free(ref);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations), cmocka_unit_test(test_bools),
        cmocka_unit_test(test_defaults),  cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),       cmocka_unit_test(test_files),
        cmocka_unit_test(test_reference), cmocka_unit_test(test_docs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
