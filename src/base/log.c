/* klog-shaped logging to stderr: one line per event, written with one write(2) call. */
#include <kcp/base.h>

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int verbosity;

void kcp_log_set_verbosity(int v)
{
    verbosity = v;
}

int kcp_log_verbosity(void)
{
    return verbosity;
}

void kcp_log(enum kcp_log_level level, const char *component, const char *fmt, ...)
{
    static const char letters[] = {'E', 'W', 'I'};
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%c%02d%02d %02d:%02d:%02d.%06ld %d %s] ", letters[level],
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)tv.tv_usec, (int)getpid(), component);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = strlen(line);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
