/*
 * hil_agent.h - the k210-hil agent: a small library a Kendryte standalone-SDK firmware links in so
 * the k210-hil framework can drive it over the console UART (load and free kmodels, memory
 * figures, files with sha256, flash, reboot). The protocol is in docs/csdk-agent.md.
 *
 * The agent owns no hardware. Everything it touches goes through the hooks below, which the
 * firmware fills in with the SDK calls it already uses. Every hook documents the SDK call a team
 * would plug in; citations are to kendryte/kendryte-standalone-sdk at commit
 * 02576ba67e8797444f3ee3f34c625b5ed048e707 (written "sdk@02576ba").
 *
 * Threading: single-threaded. Call hil_agent_poll() from the main loop (or a FreeRTOS task);
 * it never blocks. A command runs to completion inside the call that received its last byte.
 *
 * Memory: the agent's state is one static struct (about 3 KiB: two 1 KiB line buffers, sha256
 * state, the model table). It allocates only model buffers, through hooks->alloc.
 */
#ifndef HIL_AGENT_H
#define HIL_AGENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HIL_AGENT_VERSION "0.1.0"
#define HIL_AGENT_PROTOCOL 1

#define HIL_AGENT_LINE_MAX 1024     /* longest request line, newline included */
#define HIL_AGENT_CHUNK_MAX 512     /* largest DATA/READ payload, bytes before base64 */
#define HIL_AGENT_PATH_MAX 256      /* path bytes, terminating NUL included (FatFs long names: 255) */
#define HIL_AGENT_MAX_MODELS 8      /* models loaded at once */
#define HIL_AGENT_IDLE_MS 2000      /* a partial line older than this is dropped (needs now_ms) */

/* Hook return values. 0 is success; negative values say what went wrong. */
#define HIL_OK 0
#define HIL_ENOENT (-2)             /* no such file */
#define HIL_EIO (-5)                /* read/write failed */
#define HIL_ENOMEM (-12)            /* allocation failed */
#define HIL_ENOSPC (-28)            /* no room for the file */
#define HIL_EINVAL (-22)            /* bad argument (path not on this store, offset outside flash) */

/* What the firmware's loader knows about a model it was asked to load (hook model_load). */
typedef struct {
    uint32_t version;               /* 3 or 4 (the agent checked the header before the call) */
    uint32_t size;                  /* bytes of the buffer the agent hands over */
    uint32_t main_mem;              /* main memory the header asks for */
} hil_model_info_t;

typedef struct {
    uint64_t total;                 /* bytes the heap can ever hand out */
    uint64_t free;                  /* bytes free now (never sbrk'd + free chunks) */
} hil_heap_stats_t;

typedef struct hil_agent_hooks {
    /* Shown by HELLO. `board`: a short name without spaces ("maix-bit"); `build_id`: the
     * firmware's build identity (git describe, date), no spaces. */
    const char *board;
    const char *build_id;

    /* Any pointer the firmware wants back in every hook. */
    void *ctx;

    /* -- console (required) --------------------------------------------------------------
     * getc: one received byte (0..255), or -1 when none is waiting. Never blocks.
     *   SDK: uarths_getchar() (sdk@02576ba lib/drivers/uarths.c:103-112) returns EOF when the
     *   RX FIFO is empty. The UARTHS RX FIFO holds 8 bytes: call hil_agent_poll() often while a
     *   line is arriving. The framework never sends the next request before the answer to the
     *   previous one, so a busy agent loses nothing between lines.
     * write: send n bytes, blocking until they are queued.
     *   SDK: uarths_putchar() per byte (uarths.h:208), or uarths_send_data(). */
    int (*getc)(void *ctx);
    void (*write)(void *ctx, const char *buf, size_t n);

    /* Milliseconds since boot, for dropping half-received lines (optional, NULL = never).
     *   SDK: sysctl_get_time_us() / 1000 (sdk@02576ba lib/drivers/include/sysctl.h:1065). */
    uint32_t (*now_ms)(void *ctx);

    /* -- memory ---------------------------------------------------------------------------
     * alloc/free for model buffers (optional; NULL = malloc/free). Model buffers must be
     * cached memory: kpu_load_kmodel asserts is_memory_cache() when FIX_CACHE is set
     * (sdk@02576ba lib/drivers/kpu.c:1366-1368), so plain malloc is right, iomem_malloc is not.
     * heap_stats (required): total and free bytes of the heap kpu_load_kmodel allocates from.
     *   SDK: the heap is [_heap_start, _heap_end) grown by sys_brk (lib/bsp/syscalls.c:98-99,
     *   151-211); free = (_heap_end - current break) + mallinfo().fordblks. The SDK's own
     *   get_free_heap_size() (syscalls.c:759-762) reports the iomem pool, not malloc's heap. */
    void *(*alloc)(void *ctx, size_t n);
    void (*free)(void *ctx, void *p);
    int (*heap_stats)(void *ctx, hil_heap_stats_t *out);

    /* -- the model loader (required) -----------------------------------------------------
     * model_load: load the model in buf (size bytes, already checked by the agent: a v3 or v4
     * header whose tables and layer bodies fit the buffer). Store whatever the loader needs
     * in *handle. Return 0, or the loader's own non-zero result.
     *   SDK: allocate a kpu_model_context_t ZEROED (calloc), then
     *        rc = kpu_load_kmodel(ctx, buf)     (sdk@02576ba lib/drivers/kpu.c:1364-1407)
     *   and on rc != 0 call kpu_model_free(ctx) (kpu.c:1423-1430) and free ctx before
     *   returning rc: for v4, nncase_v0_load_kmodel keeps its context when try_load_model fails
     *   (lib/nncase/v0/nncase_v0.cpp:151-165), and kpu_model_free reads ctx->is_nncase, which
     *   kpu_load_kmodel leaves unset when it rejects a header (kpu.c:1401-1404).
     *   For a header the agent accepted, kpu_load_kmodel fails only when an allocation fails:
     *   v3 malloc(main_mem_usage) (kpu.c:1381-1383), v4 new uint8_t[main_mem]
     *   (lib/nncase/v0/runtime/interpreter.cpp:33-35); the agent reports any non-zero rc as
     *   ERR 2006 NO_MEM. The buffer stays allocated, untouched, until model_free: the v3
     *   context points into it (kpu.c:1375-1380).
     * model_free: undo model_load. SDK: kpu_model_free(ctx) (kpu.c:1423-1430), then free ctx. */
    int (*model_load)(void *ctx, const uint8_t *buf, const hil_model_info_t *info, void **handle);
    void (*model_free)(void *ctx, void *handle);

    /* -- files (optional; NULL = the agent answers ERR 1015 UNSUPPORTED) -----------------------
     * Paths are what the framework sends ("/sd/models/a.kmodel"); map them to the firmware's file
     * system. SDK projects use FatFs on the SD card (f_open/f_lseek/f_read/f_close; FatFs is not
     * part of the SDK's lib/). Return HIL_ENOENT for a missing file, HIL_EINVAL for a path the
     * store cannot hold.
     * file_size: size of an existing file.
     * file_read: n bytes at offset off into buf (exactly n, or an error).
     * file_write_begin/file_write/file_write_end: one file written front to back; write_end
     *   with commit = 1 makes it visible under its name atomically (write to a temporary name,
     *   then f_unlink the old file and f_rename; FatFs), commit = 0 discards it.
     * file_remove: delete a file.
     * file_truncate: set an existing file's size (optional). Bytes past the old end may hold
     *   anything (FatFs: f_lseek past the end of a file open for writing extends it, contents
     *   undefined; f_truncate cuts it). The framework makes big models of an exact size this way
     *   from a small upload of their header and tables: the loader never reads the bodies while
     *   loading, so their contents do not matter for the memory figures.
     * file_list: the index-th file (0-based), its path and size; HIL_ENOENT past the last. */
    int (*file_size)(void *ctx, const char *path, uint32_t *size);
    int (*file_read)(void *ctx, const char *path, uint32_t off, void *buf, uint32_t n);
    int (*file_write_begin)(void *ctx, const char *path, uint32_t size);
    int (*file_write)(void *ctx, uint32_t off, const void *buf, uint32_t n);
    int (*file_write_end)(void *ctx, int commit);
    int (*file_remove)(void *ctx, const char *path);
    int (*file_truncate)(void *ctx, const char *path, uint32_t size);
    int (*file_list)(void *ctx, uint32_t index, char *path, size_t path_max, uint32_t *size);

    /* -- flash (optional) -------------------------------------------------------------------
     * flash_size: bytes of SPI flash (0 = no flash commands).
     * flash_read: n bytes at addr. flash_write: n bytes at addr, erasing as needed (sector
     *   read-modify-write). The SDK's lib/ has no flash driver; its demos use the w25qxx driver
     *   (w25qxx_read_data / w25qxx_write_data over SPI3). */
    uint32_t flash_size;
    int (*flash_read)(void *ctx, uint32_t addr, void *buf, uint32_t n);
    int (*flash_write)(void *ctx, uint32_t addr, const void *buf, uint32_t n);

    /* -- reboot (optional) ------------------------------------------------------------------
     * Reset the chip; does not return. SDK: msleep(10) first (lib/bsp/include/sleep.h:28), so
     * the answer to REBOOT leaves the UART's TX FIFO, then sysctl_reset(SYSCTL_RESET_SOC)
     * (sdk@02576ba lib/drivers/sysctl.c:162, which sets soft_reset at sysctl.c:65-70). */
    void (*reboot)(void *ctx);
} hil_agent_hooks_t;

/* Start the agent with the firmware's hooks (kept by pointer: keep the struct alive). Prints the
 * BOOT line so the framework knows the firmware (re)started. Returns 0, or -1 when a required
 * hook is missing (the agent then answers every request with ERR 1016 NOT_READY). */
int hil_agent_init(const hil_agent_hooks_t *hooks);

/* Read every waiting byte and run each complete request. Never blocks. */
void hil_agent_poll(void);

/* Feed one received byte (for firmware that reads the UART itself, e.g. in an interrupt
 * handler's buffer); hil_agent_poll() is this in a loop over hooks->getc. */
void hil_agent_feed(int byte);

#ifdef __cplusplus
}
#endif
#endif /* HIL_AGENT_H */
