/*
 * The reference firmware: the k210-hil agent with hooks that behave like a standalone-SDK
 * firmware's (sdk_loader.c for kpu_load_kmodel, store.c for the SD card, a RAM window for the
 * SPI flash), on `qemu-system-riscv64 -M virt` with the K210's 6 MiB of general SRAM as the heap.
 * This file is also the example of wiring the agent into a firmware (docs/csdk-agent.md).
 */
#include <stdlib.h>
#include <string.h>
#include "board.h"
#include "hil_agent.h"

#ifndef HIL_BUILD_ID
#define HIL_BUILD_ID "unknown"
#endif

static int ref_getc(void *ctx)
{
    (void)ctx;
    return board_getc();
}

static void ref_write(void *ctx, const char *buf, size_t n)
{
    (void)ctx;
    board_write(buf, n);
}

static uint32_t ref_now_ms(void *ctx)
{
    (void)ctx;
    return (uint32_t)(board_now_us() / 1000u);
}

static int ref_heap_stats(void *ctx, hil_heap_stats_t *out)
{
    (void)ctx;
    board_heap(&out->total, &out->free);
    return 0;
}

/* The hook a real firmware writes around kpu_load_kmodel (see hil_agent.h, model_load). */
static int ref_model_load(void *ctx, const uint8_t *buf, const hil_model_info_t *info, void **handle)
{
    (void)ctx;
    (void)info;
    sdk_model_t *model = calloc(1, sdk_model_context_size());
    if (!model)
        return -1;
    int rc = sdk_kpu_load_kmodel(model, buf);
    if (rc != 0) {
        sdk_kpu_model_free(model);
        free(model);
        return rc;
    }
    *handle = model;
    return 0;
}

static void ref_model_free(void *ctx, void *handle)
{
    (void)ctx;
    sdk_kpu_model_free((sdk_model_t *)handle);
    free(handle);
}

static int ref_file_size(void *ctx, const char *path, uint32_t *size)
{
    (void)ctx;
    return store_size(path, size);
}

static int ref_file_read(void *ctx, const char *path, uint32_t off, void *buf, uint32_t n)
{
    (void)ctx;
    return store_read(path, off, buf, n);
}

static int ref_file_write_begin(void *ctx, const char *path, uint32_t size)
{
    (void)ctx;
    return store_write_begin(path, size);
}

static int ref_file_write(void *ctx, uint32_t off, const void *buf, uint32_t n)
{
    (void)ctx;
    return store_write(off, buf, n);
}

static int ref_file_write_end(void *ctx, int commit)
{
    (void)ctx;
    return store_write_end(commit);
}

static int ref_file_remove(void *ctx, const char *path)
{
    (void)ctx;
    return store_remove(path);
}

static int ref_file_truncate(void *ctx, const char *path, uint32_t size)
{
    (void)ctx;
    return store_truncate(path, size);
}

static int ref_file_list(void *ctx, uint32_t index, char *path, size_t path_max, uint32_t *size)
{
    (void)ctx;
    return store_list(index, path, path_max, size);
}

static int ref_flash_read(void *ctx, uint32_t addr, void *buf, uint32_t n)
{
    (void)ctx;
    if ((uint64_t)addr + n > FLASH_SIZE)
        return HIL_EINVAL;
    memcpy(buf, (const void *)(uintptr_t)(FLASH_BASE + addr), n);
    return HIL_OK;
}

static int ref_flash_write(void *ctx, uint32_t addr, const void *buf, uint32_t n)
{
    (void)ctx;
    if ((uint64_t)addr + n > FLASH_SIZE)
        return HIL_EINVAL;
    memcpy((void *)(uintptr_t)(FLASH_BASE + addr), buf, n);
    return HIL_OK;
}

static void ref_reboot(void *ctx)
{
    (void)ctx;
    board_reset();
}

static const hil_agent_hooks_t hooks = {
    .board = "qemu-virt",
    .build_id = HIL_BUILD_ID,
    .getc = ref_getc,
    .write = ref_write,
    .now_ms = ref_now_ms,
    .heap_stats = ref_heap_stats,
    .model_load = ref_model_load,
    .model_free = ref_model_free,
    .file_size = ref_file_size,
    .file_read = ref_file_read,
    .file_write_begin = ref_file_write_begin,
    .file_write = ref_file_write,
    .file_write_end = ref_file_write_end,
    .file_remove = ref_file_remove,
    .file_truncate = ref_file_truncate,
    .file_list = ref_file_list,
    .flash_size = FLASH_SIZE,
    .flash_read = ref_flash_read,
    .flash_write = ref_flash_write,
    .reboot = ref_reboot,
};

int main(void)
{
    board_init();
    board_puts("\r\nreference firmware " HIL_BUILD_ID ": k210-hil agent " HIL_AGENT_VERSION
               " on qemu virt, 6 MiB SRAM\r\n");
    store_mount();
    hil_agent_init(&hooks);
    for (;;) {
        int c;
        while ((c = board_getc()) >= 0)
            hil_agent_feed(c);
        hil_agent_poll();       /* drops a half line after HIL_AGENT_IDLE_MS */
        board_wait(50000);
    }
}
