/*
 * test_store_dkim.c — the DKIM keys of store.h on a real on-disk database:
 * add, list order (domain, then newest first), delete, duplicates, unknown
 * domains, selector and algorithm syntax, case, the cascade when a domain
 * goes, migration 5, and a key made by dkim_key_generate read back.
 *
 * Each test opens its own store in its own directory; where store.h has no
 * operation to observe or arrange a detail (created times, user_version),
 * the test uses its own SQLite connection to the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/core.h"
#include "smtp/smtp.h"
#include "store/store.h"
#include "tests/unit/testdir.h"

static const char PEM[] = "-----BEGIN PRIVATE KEY-----\nnot parsed by the store\n"
                          "-----END PRIVATE KEY-----\n";

struct fx {
    char dir[512];
    char db_path[600];
    struct store *s;
};

/* ---------------------------------------------------------- helpers */

/* A fresh store in testdir/name with the domains example.test and other.test. */
static struct fx *fx_open(const char *name)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/%s", testdir, name);
    snprintf(f->db_path, sizeof f->db_path, "%s/petrel.db", f->dir);
    testdir_rm(f->dir);
    char err[256] = "";
    assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    assert_int_equal(store_domain_add(f->s, "other.test"), STORE_OK);
    return f;
}

static void fx_close(struct fx *f)
{
    store_close(&f->s);
    testdir_rm(f->dir);
    free(f);
}

/* Runs sql on the file with a connection of the test's own. */
static void db_exec(struct fx *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

/* The listing as "domain/selector/algorithm" rows joined by spaces. */
struct listing {
    char text[2048];
    char pem[STORE_DKIM_PEM_MAX + 1];   /* the last row's */
    int64_t created;                    /* the last row's */
};

static void list_row(void *arg, const struct store_dkim_key_info *k)
{
    struct listing *l = arg;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s%s/%s/%s", n ? " " : "", k->domain,
             k->selector, k->algorithm);
    snprintf(l->pem, sizeof l->pem, "%s", k->pem);
    l->created = k->created;
}

static const char *list(struct fx *f, const char *domain, struct listing *l)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(store_dkim_key_list(f->s, domain, list_row, l), STORE_OK);
    return l->text;
}

static int add(struct fx *f, const char *domain, const char *sel, const char *alg)
{
    return store_dkim_key_add(f->s, domain, sel, alg, PEM);
}

/* ------------------------------------------------------------ tests */

static void test_migration(void **state)
{
    (void)state;
    struct fx *f = fx_open("migration");
    assert_true(testdir_db_int(f->db_path, "PRAGMA user_version") >= 5);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM sqlite_master"
                               " WHERE type = 'table' AND name = 'dkim_keys'"), 1);
    assert_int_equal(add(f, "example.test", "s1", "rsa-sha256"), STORE_OK);
    /* Running migration 5 again is harmless and keeps the keys. */
    store_close(&f->s);
    db_exec(f, "PRAGMA user_version = 4");
    char err[256] = "";
    assert_int_equal(store_open(f->dir, &f->s, err, sizeof err), 0);
    assert_true(testdir_db_int(f->db_path, "PRAGMA user_version") >= 5);
    struct listing l;
    assert_string_equal(list(f, NULL, &l), "example.test/s1/rsa-sha256");
    fx_close(f);
}

static void test_add_list(void **state)
{
    (void)state;
    struct fx *f = fx_open("add_list");
    struct listing l;
    assert_string_equal(list(f, NULL, &l), "");
    assert_string_equal(list(f, "example.test", &l), "");

    int64_t before = (int64_t)time(NULL);
    assert_int_equal(add(f, "other.test", "a", "rsa-sha256"), STORE_OK);
    assert_int_equal(add(f, "example.test", "old", "rsa-sha256"), STORE_OK);
    assert_int_equal(add(f, "example.test", "new", "ed25519-sha256"), STORE_OK);
    /* By domain, then newest first; within one second the later add first. */
    assert_string_equal(list(f, NULL, &l), "example.test/new/ed25519-sha256"
                        " example.test/old/rsa-sha256 other.test/a/rsa-sha256");
    assert_string_equal(list(f, "example.test", &l),
                        "example.test/new/ed25519-sha256 example.test/old/rsa-sha256");
    assert_string_equal(list(f, "other.test", &l), "other.test/a/rsa-sha256");
    assert_string_equal(l.pem, PEM);
    assert_true(l.created >= before && l.created <= (int64_t)time(NULL));

    /* created decides before the order of adding. */
    db_exec(f, "UPDATE dkim_keys SET created = created + 100 WHERE selector = 'old'");
    assert_string_equal(list(f, "example.test", &l),
                        "example.test/old/rsa-sha256 example.test/new/ed25519-sha256");
    fx_close(f);
}

static void test_case(void **state)
{
    (void)state;
    struct fx *f = fx_open("case");
    struct listing l;
    assert_int_equal(add(f, "EXAMPLE.Test", "Sel-1.Mail", "rsa-sha256"), STORE_OK);
    assert_string_equal(list(f, "Example.TEST", &l), "example.test/sel-1.mail/rsa-sha256");
    /* Selectors are DNS names: another case is the same selector. */
    assert_int_equal(add(f, "example.test", "SEL-1.mail", "ed25519-sha256"), STORE_EXISTS);
    assert_int_equal(store_dkim_key_del(f->s, "Example.Test", "sel-1.MAIL"), STORE_OK);
    assert_string_equal(list(f, NULL, &l), "");
    fx_close(f);
}

static void test_duplicates(void **state)
{
    (void)state;
    struct fx *f = fx_open("duplicates");
    struct listing l;
    assert_int_equal(add(f, "example.test", "s", "rsa-sha256"), STORE_OK);
    assert_int_equal(add(f, "example.test", "s", "rsa-sha256"), STORE_EXISTS);
    assert_int_equal(add(f, "example.test", "s", "ed25519-sha256"), STORE_EXISTS);
    /* The same selector in another domain is another key. */
    assert_int_equal(add(f, "other.test", "s", "rsa-sha256"), STORE_OK);
    assert_string_equal(list(f, NULL, &l), "example.test/s/rsa-sha256 other.test/s/rsa-sha256");
    fx_close(f);
}

static void test_unknown_domain(void **state)
{
    (void)state;
    struct fx *f = fx_open("unknown");
    struct listing l = { 0 };
    assert_int_equal(add(f, "nowhere.test", "s", "rsa-sha256"), STORE_NOTFOUND);
    assert_int_equal(store_dkim_key_del(f->s, "nowhere.test", "s"), STORE_NOTFOUND);
    assert_int_equal(store_dkim_key_list(f->s, "nowhere.test", list_row, &l), STORE_NOTFOUND);
    assert_int_equal(store_dkim_key_del(f->s, "example.test", "s"), STORE_NOTFOUND);
    assert_int_equal(add(f, "bad..domain", "s", "rsa-sha256"), STORE_INVALID);
    assert_int_equal(store_dkim_key_list(f->s, "bad..domain", list_row, &l), STORE_INVALID);
    assert_int_equal(store_dkim_key_del(f->s, "-bad.test", "s"), STORE_INVALID);
    assert_int_equal(add(f, NULL, "s", "rsa-sha256"), STORE_INVALID);
    fx_close(f);
}

static void test_selector_syntax(void **state)
{
    (void)state;
    struct fx *f = fx_open("selector");
    char label63[64], label64[65], longname[260];
    memset(label63, 'a', 63);
    label63[63] = '\0';
    memset(label64, 'b', 64);
    label64[64] = '\0';
    static const char *const good[] = {
        "a", "1", "s1", "a-b", "2026-12", "mail.s2026", "x.y.z", "petrel202612",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(add(f, "example.test", good[i], "rsa-sha256"), STORE_OK);
    assert_int_equal(add(f, "example.test", label63, "rsa-sha256"), STORE_OK);

    /* RFC 6376 §3.1: sub-domains (RFC 5321), no underscore, no empty label. */
    static const char *const bad[] = {
        "", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "ä", "a/b", "a@b", "*",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(add(f, "example.test", bad[i], "rsa-sha256"), STORE_INVALID);
    assert_int_equal(add(f, "example.test", label64, "rsa-sha256"), STORE_INVALID);
    assert_int_equal(add(f, "example.test", NULL, "rsa-sha256"), STORE_INVALID);
    assert_int_equal(store_dkim_key_del(f->s, "example.test", "a..b"), STORE_INVALID);

    /* selector._domainkey.example.test must fit in 253 bytes. */
    size_t room = 253 - strlen("._domainkey.example.test");
    snprintf(longname, sizeof longname, "%s.%s.%s.%s", label63, label63, label63, label63);
    longname[room] = '\0';
    if (longname[room - 1] == '.')
        longname[room - 1] = 'c';
    assert_int_equal(add(f, "example.test", longname, "rsa-sha256"), STORE_OK);
    longname[room] = 'd';
    longname[room + 1] = '\0';
    assert_int_equal(add(f, "example.test", longname, "rsa-sha256"), STORE_INVALID);
    fx_close(f);
}

static void test_algorithm_and_pem(void **state)
{
    (void)state;
    struct fx *f = fx_open("algorithm");
    static const char *const bad[] = { "rsa", "ed25519", "RSA-SHA256", "rsa-sha1", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(add(f, "example.test", "s", bad[i]), STORE_INVALID);
    assert_int_equal(add(f, "example.test", "s", NULL), STORE_INVALID);
    assert_int_equal(store_dkim_key_add(f->s, "example.test", "s", "rsa-sha256", NULL),
                     STORE_INVALID);
    assert_int_equal(store_dkim_key_add(f->s, "example.test", "s", "rsa-sha256", ""),
                     STORE_INVALID);
    char *big = malloc(STORE_DKIM_PEM_MAX + 2);
    assert_non_null(big);
    memset(big, 'A', STORE_DKIM_PEM_MAX + 1);
    big[STORE_DKIM_PEM_MAX + 1] = '\0';
    assert_int_equal(store_dkim_key_add(f->s, "example.test", "s", "rsa-sha256", big),
                     STORE_INVALID);
    big[STORE_DKIM_PEM_MAX] = '\0';
    assert_int_equal(store_dkim_key_add(f->s, "example.test", "s", "rsa-sha256", big),
                     STORE_OK);
    free(big);
    fx_close(f);
}

static void test_del(void **state)
{
    (void)state;
    struct fx *f = fx_open("del");
    struct listing l;
    assert_int_equal(add(f, "example.test", "a", "rsa-sha256"), STORE_OK);
    assert_int_equal(add(f, "example.test", "b", "rsa-sha256"), STORE_OK);
    assert_int_equal(add(f, "other.test", "a", "rsa-sha256"), STORE_OK);
    assert_int_equal(store_dkim_key_del(f->s, "example.test", "a"), STORE_OK);
    assert_int_equal(store_dkim_key_del(f->s, "example.test", "a"), STORE_NOTFOUND);
    assert_string_equal(list(f, NULL, &l), "example.test/b/rsa-sha256 other.test/a/rsa-sha256");
    /* Deleted, the selector may be used again. */
    assert_int_equal(add(f, "example.test", "a", "ed25519-sha256"), STORE_OK);
    assert_string_equal(list(f, "example.test", &l),
                        "example.test/a/ed25519-sha256 example.test/b/rsa-sha256");
    fx_close(f);
}

static void test_cascade(void **state)
{
    (void)state;
    struct fx *f = fx_open("cascade");
    struct listing l;
    assert_int_equal(add(f, "example.test", "a", "rsa-sha256"), STORE_OK);
    assert_int_equal(add(f, "example.test", "b", "ed25519-sha256"), STORE_OK);
    assert_int_equal(add(f, "other.test", "a", "rsa-sha256"), STORE_OK);
    assert_int_equal(store_domain_del(f->s, "example.test"), STORE_OK);
    assert_int_equal(testdir_db_int(f->db_path, "SELECT count(*) FROM dkim_keys"), 1);
    assert_string_equal(list(f, NULL, &l), "other.test/a/rsa-sha256");
    /* A domain added again starts without keys. */
    assert_int_equal(store_domain_add(f->s, "example.test"), STORE_OK);
    assert_string_equal(list(f, "example.test", &l), "");
    fx_close(f);
}

/* What petrelctl dkim generate stores: the PEM loads back as the key made. */
static void test_generated_key(void **state)
{
    (void)state;
    struct fx *f = fx_open("generated");
    static const struct {
        enum dkim_alg alg;
        const char *name;
        unsigned bits;
    } algs[] = {
        { DKIM_RSA_SHA256, "rsa-sha256", DKIM_RSA_GENERATE_BITS },
        { DKIM_ED25519_SHA256, "ed25519-sha256", 256 },
    };
    assert_int_equal(DKIM_RSA_GENERATE_BITS, 2048);
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        char *pem = NULL, *txt = NULL, sel[8], err[256] = "";
        snprintf(sel, sizeof sel, "k%zu", i);
        assert_int_equal(dkim_key_generate(algs[i].alg, &pem, &txt), 0);
        assert_int_equal(store_dkim_key_add(f->s, "example.test", sel, algs[i].name, pem),
                         STORE_OK);
        struct listing l;
        list(f, "example.test", &l);
        assert_string_equal(l.pem, pem); /* the only key: deleted below */
        struct dkim_key *k = NULL;
        assert_int_equal(dkim_key_load(l.pem, strlen(l.pem), "example.test", sel, &k, err,
                                       sizeof err), 0);
        assert_int_equal(dkim_key_alg(k), algs[i].alg);
        assert_int_equal(dkim_key_bits(k), algs[i].bits);
        char *again = dkim_key_txt_record(k);
        assert_string_equal(again, txt);
        free(again);
        dkim_key_free(&k);
        free(pem);
        free(txt);
        assert_int_equal(store_dkim_key_del(f->s, "example.test", sel), STORE_OK);
    }
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migration),
        cmocka_unit_test(test_add_list),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_unknown_domain),
        cmocka_unit_test(test_selector_syntax),
        cmocka_unit_test(test_algorithm_and_pem),
        cmocka_unit_test(test_del),
        cmocka_unit_test(test_cascade),
        cmocka_unit_test(test_generated_key),
    };
    return cmocka_run_group_tests(tests, testdir_setup, testdir_teardown);
}
