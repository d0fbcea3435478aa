/*
 * The standalone SDK's kmodel loader as far as loading goes: the same header checks, the same
 * allocations, the same return values, re-implemented from reading the source at
 * kendryte/kendryte-standalone-sdk@02576ba67e8797444f3ee3f34c625b5ed048e707 (our code, not a
 * copy). The KPU itself is not emulated: nothing here runs a model.
 *
 * kpu_load_kmodel (lib/drivers/kpu.c:1364-1407):
 *   - first u32 == 3 and arch (third u32) == 0 -> the v3 path (kpu.c:1372): malloc(main_mem_usage)
 *     for the main buffer, -1 if that fails (kpu.c:1381-1383); then the layer bodies are copied
 *     to the SRAM's uncached alias and compared (kpu.c:1384-1396): the same memory, nothing
 *     allocated. Here the bodies are read once, which is what that copy costs in memory traffic.
 *   - first u32 == 'KMDL' (kpu.c:1398) -> nncase_load_kmodel (lib/nncase/nncase.cpp:30-37): second
 *     u32 == 4 -> nncase_v0_load_kmodel, else the nncase v1 runtime. This firmware has no v1
 *     runtime (the agent refuses v5 before calling): -1.
 *   - anything else: -1 (kpu.c:1401-1404).
 * nncase_v0_load_kmodel (lib/nncase/v0/nncase_v0.cpp:151-165) allocates an nncase_context with
 * new (std::nothrow) and tests `ctx`, not the new pointer: a failed allocation is dereferenced
 * (nncase_v0.cpp:153-159). Here that halts the firmware, as the null access would.
 * try_load_model (lib/nncase/v0/runtime/interpreter.cpp:23-51): identifier, version 4, target
 * cpu or k210 (:29), else false; new uint8_t[main_mem] (:33-35), false if that fails. The
 * context's load_kmodel (nncase_v0.cpp:47-65) then copies model_size() bytes (interpreter.cpp:
 * 53-63) whatever try_load_model said, and returns -1 for false, keeping the context: only
 * kpu_model_free (kpu.c:1423-1430 -> nncase_v0_model_free, nncase_v0.cpp:173-178) releases it.
 */
#include <stdlib.h>
#include <string.h>
#include "board.h"

#define KMDL 0x4B4D444Cu
/* sizeof(nncase_context) on the K210: an interpreter (spans, a unique_ptr, an optional time
 * point, the k210 DMA channel) plus two pointers. Not measured on hardware: an estimate. */
#define NNCASE_CONTEXT_BYTES 256u

struct sdk_model {
    int is_nncase;
    uint8_t *main_buffer;       /* v3 */
    void *nncase_ctx;           /* v4: the context ... */
    uint8_t *nncase_main_mem;   /* ... and the main memory its interpreter owns */
};

size_t sdk_model_context_size(void)
{
    return sizeof(sdk_model_t);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static volatile uint32_t touched;

static void read_through(const uint8_t *p, uint64_t n)
{
    uint32_t x = 0;
    for (uint64_t i = 0; i < n; i += 64)
        x ^= p[i];
    touched = x;
}

static int load_v3(sdk_model_t *ctx, const uint8_t *buffer)
{
    uint32_t layers = le32(buffer + 12), outputs = le32(buffer + 24);
    ctx->is_nncase = 0;
    uint32_t main_mem = le32(buffer + 20);
    ctx->main_buffer = (uint8_t *)malloc(main_mem ? main_mem : 1);   /* newlib: malloc(0) is a pointer */
    if (!ctx->main_buffer)
        return -1;
    const uint8_t *headers = buffer + 28 + 8u * outputs;
    uint64_t body = 0;
    for (uint32_t i = 0; i < layers; i++)
        body += le32(headers + 8u * i + 4);
    read_through(headers + 8u * layers, body);
    return 0;
}

static int load_v4(sdk_model_t *ctx, const uint8_t *buffer)
{
    void *nnctx = calloc(1, NNCASE_CONTEXT_BYTES);
    if (!nnctx)
        board_fault("nncase_v0_load_kmodel: new nncase_context failed and the null context was "
                    "used (sdk nncase_v0.cpp:153-159)");
    ctx->is_nncase = 1;
    ctx->nncase_ctx = nnctx;
    uint32_t target = le32(buffer + 12);
    if (le32(buffer) != KMDL || le32(buffer + 4) != 4 || (target != 0 && target != 1))
        return -1;
    uint32_t main_mem = le32(buffer + 20);
    ctx->nncase_main_mem = (uint8_t *)malloc(main_mem ? main_mem : 1);   /* new[0] is a pointer */
    if (!ctx->nncase_main_mem)
        return -1;
    uint32_t inputs = le32(buffer + 28), outputs = le32(buffer + 32), nodes = le32(buffer + 24);
    const uint8_t *headers = buffer + 40 + 32u * inputs + 16u * outputs + le32(buffer + 16);
    uint64_t size = (uint64_t)(headers - buffer) + 8u * nodes;
    for (uint32_t i = 0; i < nodes; i++)
        size += le32(headers + 8u * i + 4);
    read_through(buffer, size);
    return 0;
}

int sdk_kpu_load_kmodel(sdk_model_t *ctx, const uint8_t *buffer)
{
    uint32_t first = le32(buffer);
    if (first == 3 && le32(buffer + 8) == 0)
        return load_v3(ctx, buffer);
    if (first == KMDL)
        return le32(buffer + 4) == 4 ? load_v4(ctx, buffer) : -1;
    return -1;
}

void sdk_kpu_model_free(sdk_model_t *ctx)
{
    if (ctx->is_nncase) {
        free(ctx->nncase_main_mem);
        free(ctx->nncase_ctx);
        ctx->nncase_main_mem = NULL;
        ctx->nncase_ctx = NULL;
        return;
    }
    free(ctx->main_buffer);
    ctx->main_buffer = NULL;
}
