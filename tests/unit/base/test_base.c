/* Unit tests of the base module: error table, buffers, durations, atomic files. */
#include <kcp/base.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_error_table(void **state)
{
    assert_int_equal(kcp_error_http(KCP_ENOTFOUND), 404);
    assert_string_equal(kcp_error_reason(KCP_ENOTFOUND), "NotFound");
    assert_int_equal(kcp_error_http(KCP_ETOOLARGE), 413);
    assert_string_equal(kcp_error_reason(KCP_ETOOMANY), "TooManyRequests");
    assert_int_equal(kcp_error_http(KCP_EINVALID), 422);
    assert_int_equal(kcp_error_http(0), 200);
    assert_int_equal(kcp_error_http(-9999), 500);
    assert_string_equal(kcp_error_message(-9999), "unknown error");
}

static void test_buf(void **state)
{
    struct kcp_buf b = KCP_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        kcp_buf_printf(&b, "%d,", i);
    assert_int_equal(b.len, strlen(b.data));
    assert_memory_equal(b.data, "0,1,2,", 6);
    kcp_buf_reset(&b);
    kcp_buf_json_string(&b, "a\"b\\c\n\x01");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    char *s = kcp_buf_detach(&b);
    assert_null(b.data);
    free(s);
    s = kcp_buf_detach(&b);
    assert_string_equal(s, "");
    free(s);
}

static void test_duration(void **state)
{
    int64_t ms = 0;
    assert_int_equal(kcp_duration_parse("6s", &ms), 0);
    assert_int_equal(ms, 6000);
    assert_int_equal(kcp_duration_parse("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(kcp_duration_parse("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(kcp_duration_parse("7200h", &ms), 0);
    assert_int_equal(ms, 7200LL * 3600 * 1000);
    assert_int_equal(kcp_duration_parse("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(kcp_duration_parse("", &ms), KCP_EINVAL);
    assert_int_equal(kcp_duration_parse("5", &ms), KCP_EINVAL);
    assert_int_equal(kcp_duration_parse("5x", &ms), KCP_EINVAL);
    assert_int_equal(kcp_duration_parse("-5s", &ms), KCP_EINVAL);
    assert_int_equal(kcp_duration_parse("99999999999999999999h", &ms), KCP_EINVAL);
}

static void test_file_atomic(void **state)
{
    char dir[] = "/tmp/kcp-test-base-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *sub = kcp_sprintf("%s/a/b/c", dir);
    assert_int_equal(kcp_mkdir_p(sub, 0700), 0);
    char *path = kcp_sprintf("%s/key", sub);
    assert_int_equal(kcp_file_write_atomic(path, "secret", 6, 0600), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(kcp_file_read(path, 100, &data, &len), 0);
    assert_int_equal(len, 6);
    assert_string_equal(data, "secret");
    free(data);
    assert_int_equal(kcp_file_read(path, 3, &data, &len), KCP_ETOOLARGE);
    char *missing = kcp_sprintf("%s/none", dir);
    assert_int_equal(kcp_file_read(missing, 3, &data, &len), KCP_ENOTFOUND);
    unlink(path);
    char *rm = kcp_sprintf("rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
    free(missing);
    free(path);
    free(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_file_atomic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
