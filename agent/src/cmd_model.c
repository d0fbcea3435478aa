/*
 * LOAD and DEINIT: a kmodel from a file or from flash, into a buffer the agent allocates, handed
 * to the firmware's loader hook (kpu_load_kmodel on a real SDK firmware).
 *
 * Order, so every failure has one meaning: the agent checks the header through the read hook
 * (version 2002, format 2003, short 2005) before it allocates anything; then it allocates the
 * model buffer (2006 when that fails); then it reads the model and calls the loader, whose only
 * failure for a header the agent accepted is an allocation (2006; see hil_agent.h, model_load).
 * A failed load leaves nothing allocated.
 */
#include <string.h>
#include "agent_internal.h"

#define S hil_agent_state
#define FILE_SLACK 7u   /* nncase 0.1/0.2 pad layer bodies by seeking: a file may end 7 bytes short */

static const char *const T_VERSION = "only kmodel v3/v4 supported";
static const char *const T_FORMAT = "layer count or body_size <= 0";
static const char *const T_SHORT = "model shorter than its header says";
static const char *const T_READ = "read failed";
static const char *const T_NO_MEM = "memory not enough";

uint32_t hil_models_loaded(uint64_t *bytes)
{
    uint32_t n = 0;
    *bytes = 0;
    for (int i = 0; i < HIL_AGENT_MAX_MODELS; i++) {
        if (S.models[i].id) {
            n++;
            *bytes += S.models[i].size;
        }
    }
    return n;
}

static hil_model_slot_t *free_slot(void)
{
    for (int i = 0; i < HIL_AGENT_MAX_MODELS; i++)
        if (!S.models[i].id)
            return &S.models[i];
    return NULL;
}

typedef struct {
    const char *path;       /* file, or NULL for flash */
    uint32_t base;          /* flash address */
} source_t;

static int source_read(void *rctx, uint32_t off, void *buf, uint32_t n)
{
    const source_t *src = (const source_t *)rctx;
    if (src->path)
        return S.h->file_read(S.h->ctx, src->path, off, buf, n);
    return S.h->flash_read(S.h->ctx, src->base + off, buf, n);
}

static void check_error(int code, int io)
{
    if (io)
        hil_reply_err(HIL_E_SHORT, "READ_FILE", T_READ);
    else if (code == HIL_E_VERSION)
        hil_reply_err(code, "KMODEL_VERSION", T_VERSION);
    else if (code == HIL_E_FORMAT)
        hil_reply_err(code, "KMODEL_FORMAT", T_FORMAT);
    else
        hil_reply_err(HIL_E_SHORT, "READ_FILE", T_SHORT);
}

/* Allocate, read, load; answer. `avail`: bytes readable at the source; `want`: buffer size. */
static void load(const source_t *src, uint32_t avail, uint32_t want, const hil_kmodel_t *km,
                 hil_model_slot_t *slot)
{
    uint8_t *buf = (uint8_t *)hil_alloc(want);
    if (!buf) {
        hil_log("load: model buffer allocation failed:", "bytes", want);
        hil_reply_err(E_NO_MEM, "NO_MEM", T_NO_MEM);
        return;
    }
    uint32_t n = want < avail ? want : avail;
    if (source_read((void *)src, 0, buf, n) != 0) {
        hil_free(buf);
        hil_reply_err(HIL_E_SHORT, "READ_FILE", T_READ);
        return;
    }
    if (n < want)
        memset(buf + n, 0, want - n);   /* the padding a seek-padded file lacks */
    hil_model_info_t info = {km->version, want, km->main_mem};
    void *handle = NULL;
    int rc = S.h->model_load(S.h->ctx, buf, &info, &handle);
    if (rc != 0) {
        hil_free(buf);
        hil_log("load: the loader failed, its main memory:", "bytes", km->main_mem);
        hil_reply_err(E_NO_MEM, "NO_MEM", T_NO_MEM);
        return;
    }
    slot->id = S.next_id++;
    slot->handle = handle;
    slot->buf = buf;
    slot->size = want;
    slot->version = km->version;
    slot->main_mem = km->main_mem;
    hil_heap_stats_t st;
    hil_heap(&st);
    hil_out_ok();
    hil_out_kv_u("id", slot->id);
    hil_out_kv_u("version", km->version);
    hil_out_kv_u("size", want);
    hil_out_kv_u("main_mem", km->main_mem);
    hil_out_kv_u("heap_free", st.free);
    hil_out_send();
}

static void load_file(const char *path, hil_model_slot_t *slot)
{
    if (!S.h->file_size || !S.h->file_read) {
        hil_reply_err(E_UNSUPPORTED, "UNSUPPORTED", "this firmware has no file hooks");
        return;
    }
    if (!hil_path_ok(path)) {
        hil_reply_err(E_BAD_PATH, "BAD_PATH", "path must be /name[/name...] of [A-Za-z0-9._-], under 256 bytes");
        return;
    }
    uint32_t size = 0;
    int rc = S.h->file_size(S.h->ctx, path, &size);
    if (rc == HIL_ENOENT) {
        hil_reply_err(E_NO_FILE, "NO_FILE", "no such file");
        return;
    }
    if (rc == HIL_EINVAL) {
        hil_reply_err(E_BAD_PATH, "BAD_PATH", "path not on this file system");
        return;
    }
    if (rc != 0) {
        hil_reply_err(HIL_E_SHORT, "READ_FILE", T_READ);
        return;
    }
    source_t src = {path, 0};
    hil_kmodel_t km;
    int io;
    int code = hil_kmodel_check(source_read, &src, size, FILE_SLACK, &km, &io);
    if (code) {
        check_error(code, io);
        return;
    }
    load(&src, size, size > km.model_size ? size : km.model_size, &km, slot);
}

static void load_flash(const char *off_text, const char *size_text, hil_model_slot_t *slot)
{
    if (!S.h->flash_read || !S.h->flash_size) {
        hil_reply_err(E_UNSUPPORTED, "UNSUPPORTED", "this firmware has no flash hooks");
        return;
    }
    int64_t off;
    uint32_t size = 0;
    if (hil_parse_i64(off_text, &off) || (size_text && hil_parse_u32(size_text, &size))) {
        hil_reply_err(E_ARGS, "ARGS", "usage: LOAD FILE <path> | LOAD FLASH <offset> [<size>]");
        return;
    }
    if (off <= 0) {
        hil_reply_err(E_PARAM, "PARAM", "flash offset must be > 0");
        return;
    }
    if ((uint64_t)off >= S.h->flash_size) {
        hil_reply_err(E_PARAM, "PARAM", "flash offset past the end of flash");
        return;
    }
    uint32_t avail = S.h->flash_size - (uint32_t)off;
    if (size_text && size > avail) {
        hil_reply_err(E_RANGE, "RANGE", "offset or size outside the file or flash");
        return;
    }
    source_t src = {NULL, (uint32_t)off};
    hil_kmodel_t km;
    int io;
    /* With a size the caller says how many bytes the model has (like a file); without, the
     * header says, and the bytes after the model are flash like any other. */
    int code = hil_kmodel_check(source_read, &src, size_text ? size : avail,
                                size_text ? FILE_SLACK : 0, &km, &io);
    if (code) {
        check_error(code, io);
        return;
    }
    uint32_t want = size_text && size > km.model_size ? size : km.model_size;
    load(&src, avail, want, &km, slot);
}

void hil_cmd_load(void)
{
    int is_file = strcmp(S.argv[1], "FILE") == 0;
    if ((!is_file && strcmp(S.argv[1], "FLASH") != 0) || (is_file && S.argc != 3)) {
        hil_reply_err(E_ARGS, "ARGS", "usage: LOAD FILE <path> | LOAD FLASH <offset> [<size>]");
        return;
    }
    hil_model_slot_t *slot = free_slot();
    if (!slot) {
        hil_reply_err(E_MODELS_FULL, "MODELS_FULL", "8 models loaded already");
        return;
    }
    if (is_file)
        load_file(S.argv[2], slot);
    else
        load_flash(S.argv[2], S.argc == 4 ? S.argv[3] : NULL, slot);
}

static void unload(hil_model_slot_t *m)
{
    S.h->model_free(S.h->ctx, m->handle);
    hil_free(m->buf);
    memset(m, 0, sizeof *m);
}

void hil_cmd_deinit(void)
{
    uint32_t freed = 0;
    if (strcmp(S.argv[1], "ALL") == 0) {
        for (int i = 0; i < HIL_AGENT_MAX_MODELS; i++) {
            if (S.models[i].id) {
                unload(&S.models[i]);
                freed++;
            }
        }
    } else {
        uint32_t id;
        if (hil_parse_u32(S.argv[1], &id)) {
            hil_reply_err(E_ARGS, "ARGS", "usage: DEINIT <id> | DEINIT ALL");
            return;
        }
        for (int i = 0; i < HIL_AGENT_MAX_MODELS && !freed; i++) {
            if (id && S.models[i].id == id) {
                unload(&S.models[i]);
                freed = 1;
            }
        }
        if (!freed) {
            hil_reply_err(E_PARAM, "PARAM", "no model loaded with this id");
            return;
        }
    }
    hil_heap_stats_t st;
    hil_heap(&st);
    hil_out_ok();
    hil_out_kv_u("freed", freed);
    hil_out_kv_u("heap_free", st.free);
    hil_out_send();
}
