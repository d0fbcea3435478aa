/*
 * kmodel header checks the agent makes before it allocates a model buffer or calls the loader.
 *
 * The SDK's kpu_load_kmodel trusts the header: for v3 it sums every layer's body_size and copies
 * that many bytes from the buffer (kendryte/kendryte-standalone-sdk@02576ba lib/drivers/kpu.c:
 * 1384-1392), for v4 nncase_v0 copies model_size() bytes (lib/nncase/v0/nncase_v0.cpp:51-54,
 * runtime/interpreter.cpp:53-63), so a truncated or lying header makes it read past the buffer.
 * The agent reads the header and the layer table through the firmware's read hook first, and
 * refuses such models with a code of its own; only models whose tables and bodies fit reach
 * the loader. What the SDK accepts at all is its first check (kpu.c:1372 v3 with arch 0,
 * kpu.c:1398 'KMDL', nncase.cpp:33 version 4, interpreter.cpp:29 target cpu or k210).
 *
 * Codes (the agent's; the SDK returns only 0 or -1):
 *   2002 version: not v3 with arch 0, not KMDL v4 with target 0/1 (v5 included: this agent
 *        leaves nncase v1 models out), or fewer than 12 bytes;
 *   2003 format: no layers, or a layer body_size <= 0 as a signed 32-bit value;
 *   2005 short: the tables or the bodies run past the bytes available.
 */
#include "agent_internal.h"

#define V3_HEADER 28u
#define V4_HEADER 40u
#define KMDL 0x4B4D444Cu            /* 'KMDL' as the SDK compares it: file bytes "LDMK" */
#define TABLE_CHUNK 64u             /* layer headers read per hook call */

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct {
    hil_read_fn rd;
    void *rctx;
    uint32_t avail;
    int *io;
} reader_t;

/* n bytes at off; HIL_E_SHORT when they are not all there, -1 on a read failure. */
static int get(reader_t *r, uint64_t off, void *buf, uint32_t n)
{
    if (off + n > r->avail)
        return HIL_E_SHORT;
    if (r->rd(r->rctx, (uint32_t)off, buf, n) != 0) {
        *r->io = 1;
        return HIL_E_SHORT;
    }
    return 0;
}

/* Sum the body sizes of `count` 8-byte entries {type/opcode, body_size} at `table`. */
static int sum_bodies(reader_t *r, uint64_t table, uint32_t count, uint64_t *total)
{
    uint8_t buf[8 * TABLE_CHUNK];
    *total = 0;
    for (uint32_t done = 0; done < count;) {
        uint32_t n = count - done < TABLE_CHUNK ? count - done : TABLE_CHUNK;
        int e = get(r, table + 8ull * done, buf, 8 * n);
        if (e)
            return e;
        for (uint32_t i = 0; i < n; i++) {
            int32_t body = (int32_t)le32(buf + 8 * i + 4);
            if (body <= 0)
                return HIL_E_FORMAT;
            *total += (uint32_t)body;
        }
        done += n;
    }
    return 0;
}

static int fits(reader_t *r, uint64_t size, uint32_t slack)
{
    return size <= (uint64_t)r->avail + slack ? 0 : HIL_E_SHORT;
}

static int check_v3(reader_t *r, uint32_t slack, hil_kmodel_t *out)
{
    uint8_t h[V3_HEADER];
    int e = get(r, 0, h, V3_HEADER);
    if (e)
        return e;
    uint64_t outputs = le32(h + 24), layers = le32(h + 12);
    uint64_t layer_table = V3_HEADER + 8 * outputs;
    uint64_t bodies = layer_table + 8 * layers;
    if (bodies > r->avail)
        return HIL_E_SHORT;
    if (layers == 0)
        return HIL_E_FORMAT;
    uint64_t total;
    e = sum_bodies(r, layer_table, (uint32_t)layers, &total);
    if (e)
        return e;
    e = fits(r, bodies + total, slack);
    if (e)
        return e;
    out->version = 3;
    out->main_mem = le32(h + 20);
    out->model_size = (uint32_t)(bodies + total);
    return 0;
}

static int check_v4(reader_t *r, uint32_t slack, hil_kmodel_t *out)
{
    uint8_t h[V4_HEADER];
    int e = get(r, 0, h, V4_HEADER);
    if (e)
        return e;
    uint32_t target = le32(h + 12);
    if (target != 0 && target != 1)
        return HIL_E_VERSION;
    /* try_load_model's layout (interpreter.cpp:37-48): inputs x (memory_range 16 bytes +
     * runtime_shape_t 16 bytes), outputs x memory_range, the constants, the node headers. */
    uint64_t inputs = le32(h + 28), outputs = le32(h + 32), constants = le32(h + 16);
    uint64_t nodes = le32(h + 24);
    uint64_t node_table = V4_HEADER + 32 * inputs + 16 * outputs + constants;
    uint64_t bodies = node_table + 8 * nodes;
    if (bodies > r->avail)
        return HIL_E_SHORT;
    if (nodes == 0)
        return HIL_E_FORMAT;
    uint64_t total;
    e = sum_bodies(r, node_table, (uint32_t)nodes, &total);
    if (e)
        return e;
    e = fits(r, bodies + total, slack);
    if (e)
        return e;
    out->version = 4;
    out->main_mem = le32(h + 20);
    out->model_size = (uint32_t)(bodies + total);
    return 0;
}

int hil_kmodel_check(hil_read_fn rd, void *rctx, uint32_t avail, uint32_t slack,
                     hil_kmodel_t *out, int *io)
{
    reader_t r = {rd, rctx, avail, io};
    uint8_t head[12];
    *io = 0;
    if (avail < sizeof head)
        return HIL_E_VERSION;
    if (get(&r, 0, head, sizeof head))
        return HIL_E_SHORT;
    uint32_t w0 = le32(head), w1 = le32(head + 4), w2 = le32(head + 8);
    if (w0 == 3 && w2 == 0)
        return check_v3(&r, slack, out);
    if (w0 == KMDL && w1 == 4)
        return check_v4(&r, slack, out);
    return HIL_E_VERSION;
}
