/*
 * The relay's retry schedule (relay_retry_delay, smtp/relay.c): 5 minutes
 * doubling, capped at an hour, as [queue] retry_min / retry_max give it.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "smtp/smtp.h"

static void test_default_schedule(void **state)
{
    (void)state;
    static const unsigned want[] = { 300, 600, 1200, 2400, 3600, 3600, 3600 };
    for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(relay_retry_delay(300, 3600, i + 1), want[i]);
}

/* The whole default life of a message: tries until 5 days have passed. */
static void test_tries_in_five_days(void **state)
{
    (void)state;
    uint64_t t = 0;
    unsigned tries = 1;
    while (t + relay_retry_delay(300, 3600, tries) < 5 * 86400ull)
        t += relay_retry_delay(300, 3600, tries++);
    /* 300+600+1200+2400 = 4500 s, then hourly: (432000 - 4500) / 3600 = 118 more. */
    assert_int_equal(tries, 4 + 118 + 1);
}

static void test_edges(void **state)
{
    (void)state;
    assert_int_equal(relay_retry_delay(300, 3600, 0), 300);      /* treated as the first */
    assert_int_equal(relay_retry_delay(1, 2, 1), 1);
    assert_int_equal(relay_retry_delay(1, 2, 2), 2);
    assert_int_equal(relay_retry_delay(1, 2, 50), 2);
    assert_int_equal(relay_retry_delay(60, 60, 9), 60);
    /* No overflow however many failures. */
    assert_int_equal(relay_retry_delay(86400, 7 * 86400, UINT_MAX), 7 * 86400);
    assert_int_equal(relay_retry_delay(3000000000u, 4000000000u, 40), 4000000000u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_schedule),
        cmocka_unit_test(test_tries_in_five_days),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
