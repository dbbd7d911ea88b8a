/* Unit tests for dir_cache (the in-memory cache of directory lookups, dir_cache.h): every
 * operation is answered from the store on the second identical (case-folded) lookup, NOTFOUND is
 * remembered and failures are not, cache-only directories report misses, the shared generation
 * file (dir_cache_bump_file, dir_cache_note_change, a second store on the same file) invalidates,
 * a bump during a backed lookup keeps its answer out of the store, expired IP ranges and TTL'd
 * entries are looked up again, and the store is emptied at max_entries with correct counters.
 * The backing directory is dir_mem (lookups counted by dir_mem_lookups); the generation file
 * lives in a mkdtemp directory removed in teardown. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dir/dir.h"
#include "dir/dir_cache.h"
#include "dir/dir_mem.h"
#include "lib/ipaddr.h"
#include "lib/xalloc.h"

#define LIST1 100
#define LIST2 101
#define ROUTE1 200
#define ROUTE2 201

struct fx {
    char tmpdir[64];
    char gen_path[4096];
    struct dir_cache_store *store;
    struct dir *mem; /* the backing directory */
    struct dir *dc;  /* cached, backed by mem */
    struct dir *co;  /* cache only */
};

static void ip(const char *s, struct ipaddr *out)
{
    assert_int_equal(ipaddr_parse(s, out), 0);
}

static void fill_mem(struct dir *m)
{
    dir_mem_add_domain(m, &(struct dir_domain){.name = "example.test",
                                               .enabled = true,
                                               .max_message_kb = 1234,
                                               .catch_all = "catch@example.test",
                                               .plus_char = '+'});
    dir_mem_add_domain_alias(m, "alias.test", "example.test");
    dir_mem_add_account(m, &(struct dir_account){.address = "user@example.test",
                                                 .enabled = true,
                                                 .quota_mb = 77,
                                                 .forward = "fw@else.test",
                                                 .keep_copy = true});
    dir_mem_add_alias(
        m,
        &(struct dir_alias){.address = "a@example.test", .target = "t@else.test", .enabled = true});
    dir_mem_add_list(m, &(struct dir_list){.id = LIST1,
                                           .address = "l@example.test",
                                           .enabled = true,
                                           .mode = DIR_LIST_ANNOUNCE,
                                           .announcer = "boss@example.test"});
    dir_mem_add_list(m, &(struct dir_list){.id = LIST2, .address = "l2@example.test"});
    dir_mem_add_list_member(m, LIST1, "m1@x.test");
    dir_mem_add_list_member(m, LIST2, "z@x.test");
    dir_mem_add_list_member(m, LIST1, "m2@x.test");
    dir_mem_add_list_member(m, LIST1, "m3@x.test");
    dir_mem_add_route(
        m, &(struct dir_route){
               .id = ROUTE1, .pattern = "*.dest.test", .host = "smart.dest.test", .port = 2525});
    dir_mem_add_route(m,
                      &(struct dir_route){.id = ROUTE2, .pattern = "other.test", .host = "o.test"});
    dir_mem_add_route_address(m, ROUTE1, "u@mx.dest.test");
    struct dir_iprange r = {.name = "lan", .priority = 5, .flags = DIR_IPR_SMTP | DIR_IPR_IMAP};
    ip("10.0.0.0", &r.from);
    ip("10.0.0.255", &r.to);
    dir_mem_add_iprange(m, &r);
    struct dir_iprange r6 = {.name = "v6", .priority = 3, .flags = DIR_IPR_POP3};
    ip("2001:db8::", &r6.from);
    ip("2001:db8::ffff", &r6.to);
    dir_mem_add_iprange(m, &r6);
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    snprintf(f->tmpdir, sizeof(f->tmpdir), "/tmp/gannet-dircache-XXXXXX");
    if (!mkdtemp(f->tmpdir)) {
        free(f);
        return -1;
    }
    dir_cache_gen_path(f->tmpdir, f->gen_path);
    const char *err = NULL;
    f->store = dir_cache_store_new(f->gen_path, 1000, 0, &err);
    if (!f->store) {
        fprintf(stderr, "dir_cache_store_new: %s\n", err ? err : "?");
        rmdir(f->tmpdir);
        free(f);
        return -1;
    }
    f->mem = dir_mem_new();
    fill_mem(f->mem);
    f->dc = dir_cache_new(f->store, f->mem);
    f->co = dir_cache_new(f->store, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dir_close(&f->co);
    dir_close(&f->dc);
    dir_close(&f->mem);
    dir_cache_store_free(&f->store);
    dir_cache_global_set(NULL);
    unlink(f->gen_path);
    static const char *const extra[] = {"empty.gen", "missing.gen"}; /* test_gen_file */
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        char other[4200];
        snprintf(other, sizeof(other), "%s/%s", f->tmpdir, extra[i]);
        unlink(other);
    }
    int rc = rmdir(f->tmpdir);
    free(f);
    return rc == 0 ? 0 : -1;
}

static uint64_t gen_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    uint64_t v = 0;
    assert_int_equal(read(fd, &v, sizeof(v)), sizeof(v));
    close(fd);
    return v;
}

/* ---- every operation behind one signature: the answer as a summary string ---- */

typedef enum dir_result op_fn(struct dir *d, const char *arg, char *sum, size_t n);

static enum dir_result op_domain(struct dir *d, const char *arg, char *sum, size_t n)
{
    struct dir_domain o;
    memset(&o, 0, sizeof(o));
    enum dir_result r = dir_domain_get(d, arg, &o);
    if (r == DIR_OK)
        snprintf(sum, n, "%s en=%d kb=%u catch=%s plus=%d", o.name, o.enabled, o.max_message_kb,
                 o.catch_all, o.plus_char);
    return r;
}

static enum dir_result op_domain_alias(struct dir *d, const char *arg, char *sum, size_t n)
{
    char o[DIR_NAME_MAX] = "";
    enum dir_result r = dir_domain_alias_get(d, arg, o);
    if (r == DIR_OK)
        snprintf(sum, n, "%s", o);
    return r;
}

static enum dir_result op_account(struct dir *d, const char *arg, char *sum, size_t n)
{
    struct dir_account o;
    memset(&o, 0, sizeof(o));
    enum dir_result r = dir_account_get(d, arg, &o);
    if (r == DIR_OK)
        snprintf(sum, n, "%s en=%d q=%llu fw=%s kc=%d", o.address, o.enabled,
                 (unsigned long long)o.quota_mb, o.forward, o.keep_copy);
    return r;
}

static enum dir_result op_alias(struct dir *d, const char *arg, char *sum, size_t n)
{
    struct dir_alias o;
    memset(&o, 0, sizeof(o));
    enum dir_result r = dir_alias_get(d, arg, &o);
    if (r == DIR_OK)
        snprintf(sum, n, "%s->%s en=%d", o.address, o.target, o.enabled);
    return r;
}

static enum dir_result op_list(struct dir *d, const char *arg, char *sum, size_t n)
{
    struct dir_list o;
    memset(&o, 0, sizeof(o));
    enum dir_result r = dir_list_get(d, arg, &o);
    if (r == DIR_OK)
        snprintf(sum, n, "%s id=%lld mode=%d ann=%s", o.address, (long long)o.id, (int)o.mode,
                 o.announcer);
    return r;
}

struct sumbuf {
    char *s;
    size_t n;
};

static void member_cb(void *ctx, const char *address)
{
    struct sumbuf *b = ctx;
    size_t len = strlen(b->s);
    snprintf(b->s + len, b->n - len, "%s%s", len ? "," : "", address);
}

static enum dir_result op_members(struct dir *d, const char *arg, char *sum, size_t n)
{
    struct sumbuf b = {sum, n};
    return dir_list_members(d, strtoll(arg, NULL, 10), member_cb, &b);
}

static enum dir_result op_route(struct dir *d, const char *arg, char *sum, size_t n)
{
    struct dir_route o;
    memset(&o, 0, sizeof(o));
    enum dir_result r = dir_route_find(d, arg, &o);
    if (r == DIR_OK)
        snprintf(sum, n, "%s:%u id=%lld", o.host, o.port, (long long)o.id);
    return r;
}

/* arg: "<route id> <address>" */
static enum dir_result op_route_has(struct dir *d, const char *arg, char *sum, size_t n)
{
    (void)sum;
    (void)n;
    char *end;
    long long id = strtoll(arg, &end, 10);
    assert_true(*end == ' ');
    return dir_route_has_address(d, id, end + 1);
}

static enum dir_result op_iprange(struct dir *d, const char *arg, char *sum, size_t n)
{
    struct ipaddr a;
    ip(arg, &a);
    struct dir_iprange o;
    memset(&o, 0, sizeof(o));
    enum dir_result r = dir_iprange_match(d, &a, &o);
    if (r == DIR_OK)
        snprintf(sum, n, "%s prio=%d flags=%u", o.name, o.priority, (unsigned)o.flags);
    return r;
}

struct op_case {
    const char *what;
    op_fn *op;
    const char *arg;  /* first lookup */
    const char *arg2; /* the same key spelled differently (case) */
    enum dir_result want;
    const char *want_sum; /* "" unless DIR_OK with data */
};

/* Keys are all distinct, and ordered so that a key collision between operations (same argument,
 * different operation) would show as a missing backend lookup or a wrong answer. */
static const struct op_case op_cases[] = {
    {"domain", op_domain, "example.test", "EXAMPLE.Test", DIR_OK,
     "example.test en=1 kb=1234 catch=catch@example.test plus=43"},
    {"domain nf", op_domain, "nope.test", "NOPE.TEST", DIR_NOTFOUND, ""},
    {"domain of alias", op_domain, "alias.test", "Alias.Test", DIR_NOTFOUND, ""},
    {"domain alias", op_domain_alias, "alias.test", "ALIAS.test", DIR_OK, "example.test"},
    {"domain alias nf", op_domain_alias, "example.test", "Example.TEST", DIR_NOTFOUND, ""},
    {"account", op_account, "user@example.test", "USER@Example.TEST", DIR_OK,
     "user@example.test en=1 q=77 fw=fw@else.test kc=1"},
    {"alias", op_alias, "a@example.test", "A@EXAMPLE.test", DIR_OK,
     "a@example.test->t@else.test en=1"},
    {"account nf (alias addr)", op_account, "a@example.test", "a@Example.Test", DIR_NOTFOUND, ""},
    {"alias nf (account addr)", op_alias, "user@example.test", "User@example.test", DIR_NOTFOUND,
     ""},
    {"list", op_list, "l@example.test", "L@EXAMPLE.TEST", DIR_OK,
     "l@example.test id=100 mode=2 ann=boss@example.test"},
    {"list nf", op_list, "user@example.test", "uSER@example.test", DIR_NOTFOUND, ""},
    {"members 1", op_members, "100", "100", DIR_OK, "m1@x.test,m2@x.test,m3@x.test"},
    {"members 2", op_members, "101", "101", DIR_OK, "z@x.test"},
    {"members empty", op_members, "999", "999", DIR_OK, ""},
    {"route", op_route, "mx.dest.test", "MX.Dest.TEST", DIR_OK, "smart.dest.test:2525 id=200"},
    {"route 2", op_route, "other.test", "OTHER.test", DIR_OK, "o.test:25 id=201"},
    {"route nf", op_route, "none.test", "None.Test", DIR_NOTFOUND, ""},
    {"route addr", op_route_has, "200 u@mx.dest.test", "200 U@MX.dest.TEST", DIR_OK, ""},
    {"route addr other route", op_route_has, "201 u@mx.dest.test", "201 u@mx.dest.test",
     DIR_NOTFOUND, ""},
    {"route addr nf", op_route_has, "200 v@mx.dest.test", "200 V@mx.dest.test", DIR_NOTFOUND, ""},
    {"iprange v4", op_iprange, "10.0.0.7", "10.0.0.7", DIR_OK, "lan prio=5 flags=9"},
    {"iprange v4-mapped v6", op_iprange, "::ffff:10.0.0.7", "::FFFF:10.0.0.7", DIR_NOTFOUND, ""},
    {"iprange nf", op_iprange, "10.0.1.1", "10.0.1.1", DIR_NOTFOUND, ""},
    {"iprange v6", op_iprange, "2001:db8::5", "2001:DB8:0:0::5", DIR_OK, "v6 prio=3 flags=2"},
};
#define N_CASES (sizeof(op_cases) / sizeof(op_cases[0]))

/* Run case c's operation on d with arg; check result and summary. */
static void run_case(const struct op_case *c, struct dir *d, const char *arg, enum dir_result want,
                     const char *want_sum)
{
    char sum[512] = "";
    enum dir_result r = c->op(d, arg, sum, sizeof(sum));
    if (r != want || strcmp(sum, want_sum) != 0)
        fail_msg("%s(%s): got %s \"%s\", want %s \"%s\"", c->what, arg, dir_result_name(r), sum,
                 dir_result_name(want), want_sum);
}

static void check_stats(struct dir_cache_store *s, unsigned long hits, unsigned long misses,
                        unsigned long flushes, unsigned long entries)
{
    struct dir_cache_stats st;
    dir_cache_stats(s, &st);
    if (st.hits != hits || st.misses != misses || st.flushes != flushes || st.entries != entries)
        fail_msg("stats hits=%lu misses=%lu flushes=%lu entries=%lu, want %lu %lu %lu %lu", st.hits,
                 st.misses, st.flushes, st.entries, hits, misses, flushes, entries);
}

/* 1. The second identical lookup, and the same key in other case, stays out of the backend. */
static void test_hits_every_operation(void **state)
{
    struct fx *f = *state;
    for (size_t i = 0; i < N_CASES; i++) {
        const struct op_case *c = &op_cases[i];
        unsigned before = dir_mem_lookups(f->mem);
        run_case(c, f->dc, c->arg, c->want, c->want_sum);
        if (dir_mem_lookups(f->mem) != before + 1)
            fail_msg("%s: first lookup did not reach the backend", c->what);
        run_case(c, f->dc, c->arg, c->want, c->want_sum);
        run_case(c, f->dc, c->arg2, c->want, c->want_sum);
        if (dir_mem_lookups(f->mem) != before + 1)
            fail_msg("%s: repeated lookup reached the backend", c->what);
    }
    /* The backend now fails everything: answers still come, from the store. */
    unsigned before = dir_mem_lookups(f->mem);
    dir_mem_fail_all(f->mem, DIR_TEMPFAIL);
    for (size_t i = 0; i < N_CASES; i++)
        run_case(&op_cases[i], f->dc, op_cases[i].arg2, op_cases[i].want, op_cases[i].want_sum);
    dir_mem_fail_all(f->mem, DIR_OK);
    assert_int_equal(dir_mem_lookups(f->mem), before);
    check_stats(f->store, 3 * N_CASES, N_CASES, 0, N_CASES);
    assert_false(dir_cache_take_miss(f->dc)); /* a backed directory never reports misses */
}

/* 2. TEMPFAIL and PERMFAIL are answered but never remembered. */
static void test_failures_not_cached(void **state)
{
    struct fx *f = *state;
    static const enum dir_result fails[] = {DIR_TEMPFAIL, DIR_PERMFAIL};
    for (size_t i = 0; i < N_CASES; i++) {
        const struct op_case *c = &op_cases[i];
        unsigned before = dir_mem_lookups(f->mem);
        for (size_t j = 0; j < 2; j++) {
            dir_mem_fail_next(f->mem, fails[j]);
            run_case(c, f->dc, c->arg, fails[j], "");
        }
        assert_int_equal(dir_mem_lookups(f->mem), before + 2);
        /* nothing stored: a cache-only directory still misses */
        run_case(c, f->co, c->arg, DIR_TEMPFAIL, "");
        assert_true(dir_cache_take_miss(f->co));
        run_case(c, f->dc, c->arg2, c->want, c->want_sum);
        assert_int_equal(dir_mem_lookups(f->mem), before + 3);
        run_case(c, f->dc, c->arg, c->want, c->want_sum);
        assert_int_equal(dir_mem_lookups(f->mem), before + 3);
    }
    struct dir_cache_stats st;
    dir_cache_stats(f->store, &st);
    assert_int_equal(st.entries, N_CASES);
}

/* 3. Cache-only: a miss is DIR_TEMPFAIL plus a one-shot flag; after a backed directory filled
 * the store, the answer comes without the flag. */
static void test_cache_only(void **state)
{
    struct fx *f = *state;
    assert_false(dir_cache_take_miss(f->co));
    for (size_t i = 0; i < N_CASES; i++) {
        const struct op_case *c = &op_cases[i];
        unsigned before = dir_mem_lookups(f->mem);
        run_case(c, f->co, c->arg, DIR_TEMPFAIL, "");
        assert_int_equal(dir_mem_lookups(f->mem), before);
        assert_true(dir_cache_take_miss(f->co));
        assert_false(dir_cache_take_miss(f->co));
        run_case(c, f->dc, c->arg, c->want, c->want_sum);
        assert_int_equal(dir_mem_lookups(f->mem), before + 1);
        run_case(c, f->co, c->arg2, c->want, c->want_sum);
        assert_false(dir_cache_take_miss(f->co));
        assert_int_equal(dir_mem_lookups(f->mem), before + 1);
    }
    /* a hit after a miss does not clear the flag: only take_miss does */
    run_case(&op_cases[0], f->co, "unknown.test", DIR_TEMPFAIL, "");
    run_case(&op_cases[0], f->co, "example.test", DIR_OK, op_cases[0].want_sum);
    assert_true(dir_cache_take_miss(f->co));
    assert_false(dir_cache_take_miss(f->co));
}

static const struct dir_account acct_new = {.address = "new@example.test", .quota_mb = 5};
#define ACCT_NEW_SUM "new@example.test en=0 q=5 fw= kc=0"

/* 4a. A bump of the file by "another process" drops the store; without it the stale answer
 * stays. */
static void test_bump_file_invalidates(void **state)
{
    struct fx *f = *state;
    const struct op_case *acc = &op_cases[5];
    assert_ptr_equal(acc->op, op_account);
    run_case(acc, f->dc, "new@example.test", DIR_NOTFOUND, "");
    run_case(&op_cases[0], f->dc, "example.test", DIR_OK, op_cases[0].want_sum);
    dir_mem_add_account(f->mem, &acct_new);
    unsigned before = dir_mem_lookups(f->mem);
    run_case(acc, f->dc, "NEW@example.test", DIR_NOTFOUND, ""); /* stale, from the store */
    run_case(acc, f->co, "new@example.test", DIR_NOTFOUND, "");
    assert_false(dir_cache_take_miss(f->co));
    assert_int_equal(dir_mem_lookups(f->mem), before);

    uint64_t g0 = gen_read(f->gen_path);
    const char *err = NULL;
    assert_int_equal(dir_cache_bump_file(f->gen_path, &err), 0);
    assert_int_equal(gen_read(f->gen_path), g0 + 1);

    /* everything is gone, not just the changed entry */
    run_case(acc, f->co, "new@example.test", DIR_TEMPFAIL, "");
    assert_true(dir_cache_take_miss(f->co));
    run_case(acc, f->dc, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    assert_int_equal(dir_mem_lookups(f->mem), before + 1);
    run_case(&op_cases[0], f->dc, "example.test", DIR_OK, op_cases[0].want_sum);
    assert_int_equal(dir_mem_lookups(f->mem), before + 2);
    run_case(acc, f->dc, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    assert_int_equal(dir_mem_lookups(f->mem), before + 2);
    struct dir_cache_stats st;
    dir_cache_stats(f->store, &st);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(st.entries, 2);

    /* a second bump: seen again (the store follows the counter, not just "changed once") */
    assert_int_equal(dir_cache_bump_file(f->gen_path, &err), 0);
    run_case(acc, f->dc, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    assert_int_equal(dir_mem_lookups(f->mem), before + 3);
}

/* 4b. dir_cache_note_change on the global store drops it and bumps the file; another store on
 * the same file (another process) sees it too. */
static void test_note_change(void **state)
{
    struct fx *f = *state;
    const struct op_case *acc = &op_cases[5];
    const char *err = NULL;
    struct dir_cache_store *other = dir_cache_store_new(f->gen_path, 100, 0, &err);
    assert_non_null(other);
    struct dir *odc = dir_cache_new(other, f->mem);

    /* no global store: a no-op */
    assert_null(dir_cache_global());
    uint64_t g0 = gen_read(f->gen_path);
    dir_cache_note_change();
    assert_int_equal(gen_read(f->gen_path), g0);

    run_case(acc, f->dc, "new@example.test", DIR_NOTFOUND, "");
    run_case(acc, odc, "new@example.test", DIR_NOTFOUND, "");
    dir_mem_add_account(f->mem, &acct_new);
    unsigned before = dir_mem_lookups(f->mem);
    run_case(acc, f->dc, "new@example.test", DIR_NOTFOUND, "");
    run_case(acc, odc, "new@example.test", DIR_NOTFOUND, "");
    assert_int_equal(dir_mem_lookups(f->mem), before);

    dir_cache_global_set(f->store);
    assert_ptr_equal(dir_cache_global(), f->store);
    dir_cache_note_change();
    assert_int_equal(gen_read(f->gen_path), g0 + 1);
    run_case(acc, f->dc, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    assert_int_equal(dir_mem_lookups(f->mem), before + 1);
    run_case(acc, odc, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    assert_int_equal(dir_mem_lookups(f->mem), before + 2);
    run_case(acc, f->dc, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    run_case(acc, odc, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    assert_int_equal(dir_mem_lookups(f->mem), before + 2);

    dir_close(&odc);
    dir_cache_store_free(&other);
    assert_null(other);
    assert_ptr_equal(dir_cache_global(), f->store); /* freeing another store keeps the global */
    dir_cache_store_free(&f->store);
    assert_null(dir_cache_global()); /* freeing the global store clears it */
}

/* 4c. The generation file: path, missing file, empty file, unusable path. */
static void test_gen_file(void **state)
{
    struct fx *f = *state;
    char p[4096];
    dir_cache_gen_path("/var/lib/gannet", p);
    assert_string_equal(p, "/var/lib/gannet/directory.gen");

    char missing[4200];
    snprintf(missing, sizeof(missing), "%s/missing.gen", f->tmpdir);
    const char *err = NULL;
    assert_int_equal(dir_cache_bump_file(missing, &err), 0);
    struct stat st;
    int rc = stat(missing, &st);
    int stat_errno = errno;
    assert_int_equal(rc, -1);
    assert_int_equal(stat_errno, ENOENT);
    snprintf(missing, sizeof(missing), "%s/no/such/dir/directory.gen", f->tmpdir);
    assert_int_equal(dir_cache_bump_file(missing, &err), 0);

    err = NULL;
    assert_null(dir_cache_store_new(missing, 10, 0, &err));
    assert_non_null(err);
    assert_true(err[0] != '\0');

    /* an empty file (made by hand) is grown to the counter and bumped to 1 */
    char empty[4200];
    snprintf(empty, sizeof(empty), "%s/empty.gen", f->tmpdir);
    int fd = open(empty, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(dir_cache_bump_file(empty, &err), 0);
    assert_int_equal(stat(empty, &st), 0);
    assert_int_equal(st.st_size, sizeof(uint64_t));
    assert_int_equal(gen_read(empty), 1);

    /* the store created the real one, 8 bytes, counter 0 */
    assert_int_equal(stat(f->gen_path, &st), 0);
    assert_int_equal(st.st_size, sizeof(uint64_t));
    assert_int_equal(gen_read(f->gen_path), 0);
}

/* 5. A cached range that has expired since is looked up again, even though the store holds it. */
static void test_iprange_expired(void **state)
{
    struct fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    struct dir_iprange ban = {.name = "ban", .priority = 50, .expires = now - 1};
    ip("192.0.2.0", &ban.from);
    ip("192.0.2.255", &ban.to);
    struct dir_iprange wide = {.name = "wide", .priority = 1};
    ip("192.0.0.0", &wide.from);
    ip("192.0.255.255", &wide.to);
    struct dir_iprange later = {.name = "later", .priority = 5, .expires = now + 3600};
    ip("198.51.100.0", &later.from);
    ip("198.51.100.255", &later.to);
    dir_mem_add_iprange(f->mem, &ban);
    dir_mem_add_iprange(f->mem, &wide);
    dir_mem_add_iprange(f->mem, &later);
    const struct op_case *ipc = &op_cases[N_CASES - 1];
    assert_ptr_equal(ipc->op, op_iprange);

    /* the backend's clock lags: it still answers "ban", whose expiry has passed */
    dir_mem_set_now(f->mem, now - 100);
    unsigned before = dir_mem_lookups(f->mem);
    run_case(ipc, f->dc, "192.0.2.9", DIR_OK, "ban prio=50 flags=0");
    assert_int_equal(dir_mem_lookups(f->mem), before + 1);
    run_case(ipc, f->co, "192.0.2.9", DIR_TEMPFAIL, ""); /* not served from the store */
    assert_true(dir_cache_take_miss(f->co));
    dir_mem_set_now(f->mem, 0);
    run_case(ipc, f->dc, "192.0.2.9", DIR_OK, "wide prio=1 flags=0");
    assert_int_equal(dir_mem_lookups(f->mem), before + 2);
    run_case(ipc, f->dc, "192.0.2.9", DIR_OK, "wide prio=1 flags=0");
    run_case(ipc, f->co, "192.0.2.9", DIR_OK, "wide prio=1 flags=0");
    assert_false(dir_cache_take_miss(f->co));
    assert_int_equal(dir_mem_lookups(f->mem), before + 2);

    /* an unexpired range with an expiry is served from the store */
    run_case(ipc, f->dc, "198.51.100.1", DIR_OK, "later prio=5 flags=0");
    run_case(ipc, f->dc, "198.51.100.1", DIR_OK, "later prio=5 flags=0");
    assert_int_equal(dir_mem_lookups(f->mem), before + 3);
}

/* 5b. An expired range looked up again replaces its entry: one key, one entry (store_put used to
 * add a second entry under the same key, the dead one holding a max_entries slot). */
static void test_iprange_expired_entry_replaced(void **state)
{
    struct fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    struct dir_iprange ban = {.name = "ban", .priority = 50, .expires = now - 1};
    ip("192.0.2.0", &ban.from);
    ip("192.0.2.255", &ban.to);
    dir_mem_add_iprange(f->mem, &ban);
    const struct op_case *ipc = &op_cases[N_CASES - 1];
    dir_mem_set_now(f->mem, now - 100);
    run_case(ipc, f->dc, "192.0.2.9", DIR_OK, "ban prio=50 flags=0");
    dir_mem_set_now(f->mem, 0);
    run_case(ipc, f->dc, "192.0.2.9", DIR_NOTFOUND, "");
    run_case(ipc, f->dc, "192.0.2.9", DIR_NOTFOUND, "");
    struct dir_cache_stats st;
    dir_cache_stats(f->store, &st);
    assert_int_equal(st.entries, 1); /* one key, one entry */
}

/* 6. max_entries: the store is emptied when full; answers stay right; counters are exact. */
static void test_capacity_and_stats(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    struct dir_cache_store *s = dir_cache_store_new(f->gen_path, 3, 0, &err);
    assert_non_null(s);
    struct dir *d = dir_cache_new(s, f->mem);
    for (int i = 1; i <= 3; i++) {
        struct dir_account a = {.quota_mb = (uint64_t)i};
        snprintf(a.address, sizeof(a.address), "u%d@example.test", i);
        dir_mem_add_account(f->mem, &a);
    }
    static const struct {
        const char *addr;
        enum dir_result want;
        const char *sum;
        unsigned backend; /* 1 = reached the backend */
        unsigned long hits, misses, flushes, entries;
    } steps[] = {
        {"u1@example.test", DIR_OK, "u1@example.test en=0 q=1 fw= kc=0", 1, 0, 1, 0, 1},
        {"U1@example.test", DIR_OK, "u1@example.test en=0 q=1 fw= kc=0", 0, 1, 1, 0, 1},
        {"u2@example.test", DIR_OK, "u2@example.test en=0 q=2 fw= kc=0", 1, 1, 2, 0, 2},
        {"u4@example.test", DIR_NOTFOUND, "", 1, 1, 3, 0, 3},
        {"u3@example.test", DIR_OK, "u3@example.test en=0 q=3 fw= kc=0", 1, 1, 4, 1, 1},
        {"u3@example.test", DIR_OK, "u3@example.test en=0 q=3 fw= kc=0", 0, 2, 4, 1, 1},
        {"u1@example.test", DIR_OK, "u1@example.test en=0 q=1 fw= kc=0", 1, 2, 5, 1, 2},
        {"u4@example.test", DIR_NOTFOUND, "", 1, 2, 6, 1, 3},
        {"u4@example.test", DIR_NOTFOUND, "", 0, 3, 6, 1, 3},
        {"u2@example.test", DIR_OK, "u2@example.test en=0 q=2 fw= kc=0", 1, 3, 7, 2, 1},
    };
    const struct op_case *acc = &op_cases[5];
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        unsigned before = dir_mem_lookups(f->mem);
        run_case(acc, d, steps[i].addr, steps[i].want, steps[i].sum);
        if (dir_mem_lookups(f->mem) != before + steps[i].backend)
            fail_msg("step %zu (%s): backend lookups %u, want %u", i, steps[i].addr,
                     dir_mem_lookups(f->mem) - before, steps[i].backend);
        check_stats(s, steps[i].hits, steps[i].misses, steps[i].flushes, steps[i].entries);
    }
    /* a generation change with entries counts as a flush; with none it does not */
    const char *e2 = NULL;
    assert_int_equal(dir_cache_bump_file(f->gen_path, &e2), 0);
    run_case(acc, d, "u2@example.test", DIR_OK, "u2@example.test en=0 q=2 fw= kc=0");
    check_stats(s, 3, 8, 3, 1);
    dir_close(&d);
    dir_cache_store_free(&s);
    /* the fixture's store, empty, followed the same bump without counting a flush */
    run_case(acc, f->dc, "u2@example.test", DIR_OK, "u2@example.test en=0 q=2 fw= kc=0");
    check_stats(f->store, 0, 1, 0, 1);
}

/* 6b. ttl_s: entries (NOTFOUND too) are looked up again once they are older than ttl_s. */
static void test_ttl(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    struct dir_cache_store *s = dir_cache_store_new(f->gen_path, 100, 2, &err);
    assert_non_null(s);
    struct dir *d = dir_cache_new(s, f->mem);
    const struct op_case *acc = &op_cases[5];
    unsigned before = dir_mem_lookups(f->mem);
    run_case(acc, d, "user@example.test", DIR_OK, acc->want_sum);
    run_case(acc, d, "new@example.test", DIR_NOTFOUND, "");
    dir_mem_add_account(f->mem, &acct_new);
    run_case(acc, d, "user@example.test", DIR_OK, acc->want_sum);
    run_case(acc, d, "new@example.test", DIR_NOTFOUND, ""); /* within the TTL: stale */
    assert_int_equal(dir_mem_lookups(f->mem), before + 2);
    struct timespec ts = {2, 200 * 1000 * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    run_case(acc, d, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    run_case(acc, d, "user@example.test", DIR_OK, acc->want_sum);
    assert_int_equal(dir_mem_lookups(f->mem), before + 4);
    run_case(acc, d, "new@example.test", DIR_OK, ACCT_NEW_SUM);
    assert_int_equal(dir_mem_lookups(f->mem), before + 4);
    dir_close(&d);
    dir_cache_store_free(&s);
}

/* ---- 7. a change during a backed lookup keeps that lookup's answer out of the store ---- */

/* A backend whose first account_get changes the directory while it runs: either "another
 * process" bumps the file and another thread's lookup (here: a nested one on the same store)
 * notices, or this process calls dir_cache_note_change. It answers "v<call number>". */
struct racing_dir {
    struct dir dir;
    struct fx *f;
    int mode; /* 0: bump_file + nested lookup; 1: note_change */
    unsigned calls;
};

static enum dir_result racing_account_get(struct dir *d, const char *address,
                                          struct dir_account *out)
{
    struct racing_dir *rd = (struct racing_dir *)d;
    rd->calls++;
    if (rd->calls == 1) {
        if (rd->mode == 0) {
            const char *err = NULL;
            assert_int_equal(dir_cache_bump_file(rd->f->gen_path, &err), 0);
            run_case(&op_cases[0], rd->f->dc, "example.test", DIR_OK, op_cases[0].want_sum);
        } else {
            dir_cache_note_change();
        }
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->address, sizeof(out->address), "%s", address);
    snprintf(out->forward, sizeof(out->forward), "v%u", rd->calls);
    return DIR_OK;
}

static void racing_close(struct dir *d)
{
    free(d);
}

static const struct dir_ops racing_ops = {
    .account_get = racing_account_get,
    .close = racing_close,
};

static void test_change_during_lookup(void **state)
{
    struct fx *f = *state;
    const struct op_case *acc = &op_cases[5];
    dir_cache_global_set(f->store);
    for (int mode = 0; mode < 2; mode++) {
        struct racing_dir *rd = xcalloc(1, sizeof(*rd));
        rd->dir.ops = &racing_ops;
        rd->f = f;
        rd->mode = mode;
        struct dir *backing = &rd->dir;
        struct dir *d = dir_cache_new(f->store, backing);
        uint64_t g0 = gen_read(f->gen_path);
        run_case(acc, d, "race@example.test", DIR_OK, "race@example.test en=0 q=0 fw=v1 kc=0");
        assert_int_equal(gen_read(f->gen_path), g0 + 1);
        assert_int_equal(rd->calls, 1);
        /* the v1 answer was read before the change: it must not be served now */
        run_case(acc, d, "race@example.test", DIR_OK, "race@example.test en=0 q=0 fw=v2 kc=0");
        assert_int_equal(rd->calls, 2);
        run_case(acc, d, "race@example.test", DIR_OK, "race@example.test en=0 q=0 fw=v2 kc=0");
        assert_int_equal(rd->calls, 2);
        dir_close(&d);
        dir_close(&backing);
        /* start the next mode with nothing cached */
        dir_cache_note_change();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hits_every_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bump_file_invalidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_note_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gen_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iprange_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iprange_expired_entry_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_during_lookup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
