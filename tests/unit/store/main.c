/* unit.store: each file's group; `test_store crash-child DIR PREFIX` is the crash test's writer. */
#include "fixture.h"

#include <string.h>

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "crash-child") == 0)
        return test_crash_child(argv[2], argv[3]);
    int failed = 0;
    failed += test_entry_run();
    failed += test_apply_run();
    failed += test_commit_run();
    failed += test_list_run();
    failed += test_watch_run();
    failed += test_snapshot_run();
    failed += test_crash_run();
    failed += test_defer_run();
    return failed ? 1 : 0;
}
