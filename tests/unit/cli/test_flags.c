/* Unit tests of kubectl-style flag parsing. */
#include <kcp/base.h>
#include <kcp/cli.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

static bool flag_b;
static const char *flag_s;
static int flag_i;
static int64_t flag_d;

static const struct kcp_flag flags[] = {
    {"bool", 0, KCP_FLAG_BOOL, &flag_b, "false", "a bool"},
    {"str", 's', KCP_FLAG_STRING, &flag_s, "''", "a string"},
    {"v", 'v', KCP_FLAG_INT, &flag_i, "0", "an int"},
    {"dur", 0, KCP_FLAG_DURATION, &flag_d, "0", "a duration"},
    {NULL, 0, 0, NULL, NULL, NULL},
};
static const struct kcp_command cmd = {.name = "t", .short_help = "test", .flags = flags};

static int parse(int argc, char **argv, int *out_argc)
{
    flag_b = false;
    flag_s = NULL;
    flag_i = 0;
    flag_d = 0;
    FILE *null = fopen("/dev/null", "w");
    int rc = kcp_cli_parse(&cmd, argc, argv, out_argc, null, null);
    fclose(null);
    return rc;
}

static void test_forms(void **state)
{
    char *argv[] = {"--bool", "pos1", "--str", "x", "-v=3", "--dur=1m", "pos2", "--", "--str"};
    int n = 0;
    assert_int_equal(parse(9, argv, &n), 0);
    assert_true(flag_b);
    assert_string_equal(flag_s, "x");
    assert_int_equal(flag_i, 3);
    assert_int_equal(flag_d, 60000);
    assert_int_equal(n, 3);
    assert_string_equal(argv[0], "pos1");
    assert_string_equal(argv[1], "pos2");
    assert_string_equal(argv[2], "--str");

    char *argv2[] = {"-sy", "--bool=false", "-v", "7"};
    assert_int_equal(parse(4, argv2, &n), 0);
    assert_string_equal(flag_s, "y");
    assert_false(flag_b);
    assert_int_equal(flag_i, 7);
    assert_int_equal(n, 0);
}

static void test_errors(void **state)
{
    int n;
    char *unknown[] = {"--nope"};
    assert_int_equal(parse(1, unknown, &n), KCP_EXIT_USAGE);
    char *unknown_short[] = {"-x"};
    assert_int_equal(parse(1, unknown_short, &n), KCP_EXIT_USAGE);
    char *missing[] = {"--str"};
    assert_int_equal(parse(1, missing, &n), KCP_EXIT_USAGE);
    char *badint[] = {"-v", "many"};
    assert_int_equal(parse(2, badint, &n), KCP_EXIT_USAGE);
    char *baddur[] = {"--dur", "5"};
    assert_int_equal(parse(2, baddur, &n), KCP_EXIT_USAGE);
    char *badbool[] = {"--bool=maybe"};
    assert_int_equal(parse(1, badbool, &n), KCP_EXIT_USAGE);
    char *help[] = {"--help"};
    assert_int_equal(parse(1, help, &n), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
