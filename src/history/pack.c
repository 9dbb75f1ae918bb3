/*
 * Where the recorder's objects land on disk: one pack per batch, folded into one larger pack
 * every HISTORY_PACKS_MAX batches. Loose objects would cost a file and a 4 KiB block each (six
 * per entry: 265 MB for 10,000 updates); a pack per batch costs two files, and the folding keeps
 * the count of packs (which every object lookup walks) small and finds deltas across batches.
 */
#include "history_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2/sys/mempack.h>
#include <malloc.h>

#define HISTORY_PACKS_MAX 32

static int fail(const char *what)
{
    const git_error *e = git_error_last();
    kcp_log(KCP_LOG_ERROR, "history", "git %s: %s", what, e && e->message ? e->message : "error");
    return KCP_EIO;
}

static char *pack_dir(struct history_rec *r)
{
    return kcp_sprintf("%sobjects/pack", git_repository_path(r->repo));
}

void history_pack_note_tip(struct history_rec *r, const git_oid *id)
{
    r->tips = kcp_realloc(r->tips, (r->ntips + 1) * sizeof(*r->tips));
    git_oid_cpy(&r->tips[r->ntips++], id);
}

int history_pack_write(struct history_rec *r)
{
    git_buf pack = {0};
    git_indexer *idx = NULL;
    git_indexer_progress stats = {0};
    char *dir = pack_dir(r);
    int rc = 0;
    if (git_mempack_dump(&pack, r->repo, r->mempack) != 0) {
        rc = fail("pack");
        goto done;
    }
    if (pack.size <= 32) /* header and trailer only: nothing new */
        goto done;
    if (git_indexer_new(&idx, dir, 0, r->odb, NULL) != 0 ||
        git_indexer_append(idx, pack.ptr, pack.size, &stats) != 0 ||
        git_indexer_commit(idx, &stats) != 0) {
        rc = fail("write pack");
        goto done;
    }
    r->small = kcp_realloc(r->small, (r->nsmall + 1) * sizeof(*r->small));
    r->small[r->nsmall++] = kcp_strdup(git_indexer_name(idx));
    git_mempack_reset(r->mempack);
    git_odb_refresh(r->odb);
    /* A batch's objects were large transient allocations: give the freed memory back to the
     * system instead of letting the allocator hold it (an edge box's RSS is the budget). */
    malloc_trim(0);
done:
    git_indexer_free(idx);
    git_buf_dispose(&pack);
    free(dir);
    return rc;
}

/* Folds the batch packs into one: the objects of every commit since the last fold. */
int history_pack_fold(struct history_rec *r)
{
    git_packbuilder *pb = NULL;
    git_revwalk *w = NULL;
    char *dir = pack_dir(r);
    int rc = 0;
    if (r->nsmall < HISTORY_PACKS_MAX)
        goto done;
    if (git_packbuilder_new(&pb, r->repo) != 0 || git_revwalk_new(&w, r->repo) != 0) {
        rc = fail("packbuilder");
        goto done;
    }
    for (size_t i = 0; i < r->ntips; i++)
        if (git_revwalk_push(w, &r->tips[i]) != 0) {
            rc = fail("fold walk");
            goto done;
        }
    if (r->has_folded)
        git_revwalk_hide(w, &r->folded);
    if (git_packbuilder_insert_walk(pb, w) != 0 ||
        git_packbuilder_write(pb, dir, 0, NULL, NULL) != 0) {
        rc = fail("fold pack");
        goto done;
    }
    /* The new pack holds everything the small ones did: drop them. */
    for (size_t i = 0; i < r->nsmall; i++) {
        if (strcmp(r->small[i], git_packbuilder_name(pb)) != 0) {
            char *p = kcp_sprintf("%s/pack-%s.pack", dir, r->small[i]);
            char *x = kcp_sprintf("%s/pack-%s.idx", dir, r->small[i]);
            unlink(x);
            unlink(p);
            free(p);
            free(x);
        }
        free(r->small[i]);
    }
    r->nsmall = 0;
    r->ntips = 0;
    if (r->has_head) {
        git_oid_cpy(&r->folded, &r->head);
        r->has_folded = true;
    }
    git_odb_refresh(r->odb);
done:
    git_revwalk_free(w);
    git_packbuilder_free(pb);
    free(dir);
    return rc;
}

void history_pack_free(struct history_rec *r)
{
    for (size_t i = 0; i < r->nsmall; i++)
        free(r->small[i]);
    free(r->small);
    free(r->tips);
}
