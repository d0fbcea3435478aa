/*
 * Files and flash: PUT/FPUT + DATA + END (writes, sha256-checked), ABORT, STAT/READ/RM/TRUNC/LS
 * on files, FSHA/FREAD on flash.
 *
 * A write is stop-and-wait: each DATA carries the offset it starts at and is answered with the
 * next offset expected, so the framework resends after a lost or garbled line without
 * duplicating bytes (a DATA that repeats the chunk just taken is answered again, not written
 * twice). END compares the sha256 of what arrived with the one PUT announced and only then
 * commits the file; for flash it also reads the range back and hashes that.
 */
#include <string.h>
#include "agent_internal.h"

#define S hil_agent_state

static const char *const T_RANGE = "offset or size outside the file or flash";
static const char *const T_IO = "file or flash I/O failed";

void hil_xfer_cancel(void)
{
    if (S.xfer.kind == XFER_FILE)
        S.h->file_write_end(S.h->ctx, 0);
    S.xfer.kind = XFER_NONE;
}

static int have_file_hooks(int writing)
{
    const hil_agent_hooks_t *h = S.h;
    int ok = h->file_size && h->file_read;
    if (writing)
        ok = ok && h->file_write_begin && h->file_write && h->file_write_end;
    if (!ok)
        hil_reply_err(E_UNSUPPORTED, "UNSUPPORTED", "this firmware has no file hooks");
    return ok;
}

static int have_flash_hooks(int writing)
{
    int ok = S.h->flash_read && S.h->flash_size && (!writing || S.h->flash_write);
    if (!ok)
        hil_reply_err(E_UNSUPPORTED, "UNSUPPORTED", "this firmware has no flash hooks");
    return ok;
}

static int path_arg(const char *path)
{
    if (hil_path_ok(path))
        return 1;
    hil_reply_err(E_BAD_PATH, "BAD_PATH", "path must be /name[/name...] of [A-Za-z0-9._-], under 256 bytes");
    return 0;
}

/* A file-hook result other than 0 as an answer. */
static void file_error(int rc)
{
    if (rc == HIL_ENOENT)
        hil_reply_err(E_NOT_FOUND, "NOT_FOUND", "no such file");
    else if (rc == HIL_EINVAL)
        hil_reply_err(E_BAD_PATH, "BAD_PATH", "path not on this file system");
    else if (rc == HIL_ENOSPC)
        hil_reply_err(E_NO_SPACE, "NO_SPACE", "no room for a file of this size");
    else
        hil_reply_err(E_IO, "IO", T_IO);
}

static void xfer_ready(void)
{
    hil_out_ok();
    hil_out_kv_u("next", 0);
    hil_out_kv_u("chunk_max", HIL_AGENT_CHUNK_MAX);
    hil_out_send();
}

void hil_cmd_put(void)
{
    uint32_t size;
    uint8_t want[32];
    if (!have_file_hooks(1))
        return;
    if (hil_parse_u32(S.argv[2], &size) || hil_parse_sha(S.argv[3], want)) {
        hil_reply_err(E_ARGS, "ARGS", "usage: PUT <path> <size> <sha256>");
        return;
    }
    if (!path_arg(S.argv[1]))
        return;
    hil_xfer_cancel();
    int rc = S.h->file_write_begin(S.h->ctx, S.argv[1], size);
    if (rc != 0) {
        file_error(rc);
        return;
    }
    S.xfer.kind = XFER_FILE;
    strcpy(S.xfer.path, S.argv[1]);
    S.xfer.size = size;
    S.xfer.next = 0;
    memcpy(S.xfer.want, want, 32);
    hil_sha256_init(&S.xfer.sha);
    xfer_ready();
}

void hil_cmd_fput(void)
{
    uint32_t off, size;
    uint8_t want[32];
    if (!have_flash_hooks(1))
        return;
    if (hil_parse_u32(S.argv[1], &off) || hil_parse_u32(S.argv[2], &size) || hil_parse_sha(S.argv[3], want)) {
        hil_reply_err(E_ARGS, "ARGS", "usage: FPUT <offset> <size> <sha256>");
        return;
    }
    if ((uint64_t)off + size > S.h->flash_size) {
        hil_reply_err(E_RANGE, "RANGE", T_RANGE);
        return;
    }
    hil_xfer_cancel();
    S.xfer.kind = XFER_FLASH;
    S.xfer.addr = off;
    S.xfer.size = size;
    S.xfer.next = 0;
    memcpy(S.xfer.want, want, 32);
    hil_sha256_init(&S.xfer.sha);
    xfer_ready();
}

static void answer_next(int code, const char *name, const char *text)
{
    if (code)
        hil_out_err(code, name);
    else
        hil_out_ok();
    hil_out_kv_u("next", S.xfer.next);
    if (code)
        hil_out_text(text);
    hil_out_send();
}

void hil_cmd_data(void)
{
    uint32_t off;
    if (S.xfer.kind == XFER_NONE) {
        hil_reply_err(E_NO_TRANSFER, "NO_TRANSFER", "no PUT or FPUT in progress");
        return;
    }
    if (hil_parse_u32(S.argv[1], &off)) {
        hil_reply_err(E_ARGS, "ARGS", "usage: DATA <offset> <base64>");
        return;
    }
    long n = hil_b64_decode(S.argv[2], strlen(S.argv[2]), S.chunk, sizeof S.chunk);
    if (n <= 0) {
        hil_reply_err(E_BASE64, "BASE64", "payload is not base64 of 1..512 bytes");
        return;
    }
    if (off != S.xfer.next) {
        /* the chunk just taken, sent again because its answer was lost: answer, do not write */
        if (off < S.xfer.next && (uint64_t)off + (uint64_t)n == S.xfer.next)
            answer_next(0, NULL, NULL);
        else
            answer_next(E_OFFSET, "OFFSET", "data out of sequence");
        return;
    }
    if ((uint64_t)off + (uint64_t)n > S.xfer.size) {
        answer_next(E_OFFSET, "OFFSET", "data past the announced size");
        return;
    }
    int rc = S.xfer.kind == XFER_FILE
        ? S.h->file_write(S.h->ctx, off, S.chunk, (uint32_t)n)
        : S.h->flash_write(S.h->ctx, S.xfer.addr + off, S.chunk, (uint32_t)n);
    if (rc != 0) {
        hil_xfer_cancel();
        file_error(rc == HIL_ENOSPC ? rc : HIL_EIO);
        return;
    }
    hil_sha256_update(&S.xfer.sha, S.chunk, (size_t)n);
    S.xfer.next += (uint32_t)n;
    answer_next(0, NULL, NULL);
}

/* sha256 of n bytes at off of a file (path) or of flash (path NULL); 0 or a hook error. */
static int hash_range(const char *path, uint32_t off, uint32_t n, uint8_t out[32])
{
    hil_sha256_t sha;
    hil_sha256_init(&sha);
    while (n) {
        uint32_t k = n < sizeof S.chunk ? n : (uint32_t)sizeof S.chunk;
        int rc = path ? S.h->file_read(S.h->ctx, path, off, S.chunk, k)
                      : S.h->flash_read(S.h->ctx, off, S.chunk, k);
        if (rc != 0)
            return rc;
        hil_sha256_update(&sha, S.chunk, k);
        off += k;
        n -= k;
    }
    hil_sha256_final(&sha, out);
    return 0;
}

void hil_cmd_end(void)
{
    uint8_t got[32];
    if (S.xfer.kind == XFER_NONE) {
        hil_reply_err(E_NO_TRANSFER, "NO_TRANSFER", "no PUT or FPUT in progress");
        return;
    }
    if (S.xfer.next != S.xfer.size) {
        answer_next(E_OFFSET, "OFFSET", "transfer incomplete");
        return;
    }
    hil_sha256_final(&S.xfer.sha, got);
    if (memcmp(got, S.xfer.want, 32) != 0) {
        hil_xfer_cancel();
        hil_out_err(E_SHA, "SHA_MISMATCH");
        hil_out_kv_hex("sha256", got, 32);
        hil_out_text("data differs from the announced sha256");
        hil_out_send();
        return;
    }
    int kind = S.xfer.kind;
    S.xfer.kind = XFER_NONE;
    if (kind == XFER_FILE) {
        int rc = S.h->file_write_end(S.h->ctx, 1);
        if (rc != 0) {
            file_error(rc);
            return;
        }
    } else {
        int rc = hash_range(NULL, S.xfer.addr, S.xfer.size, got);
        if (rc != 0) {
            hil_reply_err(E_IO, "IO", T_IO);
            return;
        }
        if (memcmp(got, S.xfer.want, 32) != 0) {
            hil_out_err(E_SHA, "SHA_MISMATCH");
            hil_out_kv_hex("sha256", got, 32);
            hil_out_text("flash read back differs from the data");
            hil_out_send();
            return;
        }
    }
    hil_out_ok();
    hil_out_kv_u("size", S.xfer.size);
    hil_out_kv_hex("sha256", got, 32);
    hil_out_send();
}

void hil_cmd_abort(void)
{
    hil_xfer_cancel();
    hil_out_ok();
    hil_out_send();
}

void hil_cmd_stat(void)
{
    uint32_t size;
    uint8_t sha[32];
    if (!have_file_hooks(0) || !path_arg(S.argv[1]))
        return;
    int rc = S.h->file_size(S.h->ctx, S.argv[1], &size);
    if (rc == 0)
        rc = hash_range(S.argv[1], 0, size, sha);
    if (rc != 0) {
        file_error(rc);
        return;
    }
    hil_out_ok();
    hil_out_kv_u("size", size);
    hil_out_kv_hex("sha256", sha, 32);
    hil_out_send();
}

/* offset and count arguments at argv[i], argv[i+1]; count clipped to `limit` - offset. */
static int range_args(int i, uint32_t limit, uint32_t *off, uint32_t *n, const char *usage)
{
    if (hil_parse_u32(S.argv[i], off) || hil_parse_u32(S.argv[i + 1], n)) {
        hil_reply_err(E_ARGS, "ARGS", usage);
        return 0;
    }
    if (*off > limit) {
        hil_reply_err(E_RANGE, "RANGE", T_RANGE);
        return 0;
    }
    if (*n > limit - *off)
        *n = limit - *off;
    return 1;
}

static void answer_data(uint32_t off, uint32_t n)
{
    hil_out_ok();
    hil_out_kv_u("offset", off);
    hil_out_kv_u("count", n);
    hil_out_kv_b64("data", S.chunk, n);
    hil_out_send();
}

void hil_cmd_read(void)
{
    uint32_t size, off, n;
    if (!have_file_hooks(0) || !path_arg(S.argv[1]))
        return;
    int rc = S.h->file_size(S.h->ctx, S.argv[1], &size);
    if (rc != 0) {
        file_error(rc);
        return;
    }
    if (!range_args(2, size, &off, &n, "usage: READ <path> <offset> <count>"))
        return;
    if (n > HIL_AGENT_CHUNK_MAX)
        n = HIL_AGENT_CHUNK_MAX;
    if (n && (rc = S.h->file_read(S.h->ctx, S.argv[1], off, S.chunk, n)) != 0) {
        file_error(rc);
        return;
    }
    answer_data(off, n);
}

void hil_cmd_rm(void)
{
    if (!S.h->file_remove) {
        hil_reply_err(E_UNSUPPORTED, "UNSUPPORTED", "this firmware has no file hooks");
        return;
    }
    if (!path_arg(S.argv[1]))
        return;
    int rc = S.h->file_remove(S.h->ctx, S.argv[1]);
    if (rc != 0) {
        file_error(rc);
        return;
    }
    hil_out_ok();
    hil_out_send();
}

void hil_cmd_trunc(void)
{
    uint32_t size;
    if (!S.h->file_truncate) {
        hil_reply_err(E_UNSUPPORTED, "UNSUPPORTED", "this firmware has no file_truncate hook");
        return;
    }
    if (hil_parse_u32(S.argv[2], &size)) {
        hil_reply_err(E_ARGS, "ARGS", "usage: TRUNC <path> <size>");
        return;
    }
    if (!path_arg(S.argv[1]))
        return;
    if (S.xfer.kind == XFER_FILE)
        hil_xfer_cancel();      /* the firmware's file layer writes one file at a time */
    int rc = S.h->file_truncate(S.h->ctx, S.argv[1], size);
    if (rc != 0) {
        file_error(rc);
        return;
    }
    hil_out_ok();
    hil_out_kv_u("size", size);
    hil_out_send();
}

void hil_cmd_ls(void)
{
    uint32_t index, size = 0;
    char path[HIL_AGENT_PATH_MAX];
    if (!S.h->file_list) {
        hil_reply_err(E_UNSUPPORTED, "UNSUPPORTED", "this firmware has no file hooks");
        return;
    }
    if (hil_parse_u32(S.argv[1], &index)) {
        hil_reply_err(E_ARGS, "ARGS", "usage: LS <index>");
        return;
    }
    int rc = S.h->file_list(S.h->ctx, index, path, sizeof path, &size);
    if (rc != 0 && rc != HIL_ENOENT) {
        file_error(rc);
        return;
    }
    hil_out_ok();
    hil_out_kv_u("index", index);
    if (rc == HIL_ENOENT) {
        hil_out_kv_u("end", 1);
    } else {
        path[sizeof path - 1] = '\0';
        hil_out_kv_s("path", hil_path_ok(path) ? path : "?");
        hil_out_kv_u("size", size);
    }
    hil_out_send();
}

void hil_cmd_fsha(void)
{
    uint32_t off, n;
    uint8_t sha[32];
    if (!have_flash_hooks(0) || !range_args(1, S.h->flash_size, &off, &n, "usage: FSHA <offset> <size>"))
        return;
    if (hash_range(NULL, off, n, sha) != 0) {
        hil_reply_err(E_IO, "IO", T_IO);
        return;
    }
    hil_out_ok();
    hil_out_kv_u("offset", off);
    hil_out_kv_u("size", n);
    hil_out_kv_hex("sha256", sha, 32);
    hil_out_send();
}

void hil_cmd_fread(void)
{
    uint32_t off, n;
    if (!have_flash_hooks(0) || !range_args(1, S.h->flash_size, &off, &n, "usage: FREAD <offset> <count>"))
        return;
    if (n > HIL_AGENT_CHUNK_MAX)
        n = HIL_AGENT_CHUNK_MAX;
    if (n && S.h->flash_read(S.h->ctx, off, S.chunk, n) != 0) {
        hil_reply_err(E_IO, "IO", T_IO);
        return;
    }
    answer_data(off, n);
}
