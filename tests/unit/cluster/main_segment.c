/* unit.cluster.segment: unit.cluster's groups against logseg.c, then the segment store's own. */
#include "fixture.h"

#include <stdlib.h>
#include <string.h>

int test_logseg_run(void);

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "crash-child") == 0)
        return test_logstore_crash_child(argv[2], strtoull(argv[3], NULL, 10),
                                         strtoull(argv[4], NULL, 10));
    int failed = 0;
    failed += test_logstore_run();
    failed += test_logstore_crash_run();
    failed += test_logseg_run();
    return failed ? 1 : 0;
}
