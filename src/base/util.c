/* Small helpers: Go-style durations and durable file writes. */
#include <kcp/base.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kcp_duration_parse(const char *s, int64_t *out_ms)
{
    /* Units as Go's time.ParseDuration; fractions are not accepted (no flag needs them). */
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    int64_t total = 0;
    if (!s || !*s)
        return KCP_EINVAL;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    while (*s) {
        if (*s < '0' || *s > '9')
            return KCP_EINVAL;
        int64_t n = 0;
        while (*s >= '0' && *s <= '9') {
            if (n > INT64_MAX / 10 / 3600000)
                return KCP_EINVAL;
            n = n * 10 + (*s++ - '0');
        }
        size_t best = 0;
        int64_t mult = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, l) == 0 && l > best) {
                best = l;
                mult = units[i].ms;
            }
        }
        if (!best)
            return KCP_EINVAL;
        s += best;
        total += n * mult;
    }
    *out_ms = total;
    return 0;
}

int kcp_file_read(const char *path, size_t max, char **out, size_t *out_len)
{
    int rc = 0;
    struct kcp_buf b = KCP_BUF_INIT;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? KCP_ENOTFOUND : KCP_EIO;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > max) {
            rc = KCP_ETOOLARGE;
            goto done;
        }
        kcp_buf_append(&b, chunk, n);
    }
    if (ferror(f)) {
        rc = KCP_EIO;
        goto done;
    }
    if (out_len)
        *out_len = b.len;
    *out = kcp_buf_detach(&b);
done:
    fclose(f);
    kcp_buf_free(&b);
    return rc;
}

static int fsync_dir_of(const char *path)
{
    char *dir = kcp_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    free(dir);
    if (fd < 0)
        return KCP_EIO;
    int rc = fsync(fd) == 0 ? 0 : KCP_EIO;
    close(fd);
    return rc;
}

int kcp_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
    int rc = 0;
    char *tmp = kcp_sprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = KCP_EIO;
        goto done;
    }
    /* open(2) honours the umask; the mode asked for (0600 for keys) must hold exactly. */
    if (fchmod(fd, mode) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = KCP_EIO;
            goto done;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = KCP_EIO;
        goto done;
    }
    rc = fsync_dir_of(path);
done:
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

int kcp_mkdir_p(const char *path, unsigned mode)
{
    char *p = kcp_strdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            rc = KCP_EIO;
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    free(p);
    return rc;
}
