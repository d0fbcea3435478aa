/* Internals shared by the agent's source files (not part of the firmware-facing API). */
#ifndef HIL_AGENT_INTERNAL_H
#define HIL_AGENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32), continued from `crc` (0 to start). */
uint32_t hil_crc32(uint32_t crc, const void *data, size_t n);

/* SHA-256 (FIPS 180-4). */
typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    uint32_t used;
} hil_sha256_t;
void hil_sha256_init(hil_sha256_t *s);
void hil_sha256_update(hil_sha256_t *s, const void *data, size_t n);
void hil_sha256_final(hil_sha256_t *s, uint8_t out[32]);

/* Base64 (RFC 4648, standard alphabet, padded). encode writes 4*ceil(n/3) chars and a NUL.
 * decode returns the byte count, or -1 for anything but canonical padded base64 or when the
 * result would exceed out_max. */
size_t hil_b64_encode(const uint8_t *in, size_t n, char *out);
long hil_b64_decode(const char *in, size_t len, uint8_t *out, size_t out_max);

/* kmodel header checks, done before anything is allocated (kmodel_check.c). */
typedef int (*hil_read_fn)(void *rctx, uint32_t off, void *buf, uint32_t n);

typedef struct {
    uint32_t version;       /* 3 or 4 */
    uint32_t main_mem;      /* main memory the header asks for */
    uint32_t model_size;    /* header tables + layer bodies: what the loader reads */
} hil_kmodel_t;

/* Check the model readable through rd (avail bytes there). `slack`: how many bytes the model
 * may end short of its header math (7 for a file: nncase pads bodies by seeking; 0 when the
 * bytes after the model are readable anyway, as in flash). Returns 0, or one of the agent's
 * load error codes (2002 version, 2003 format, 2005 short); *io is set when rd itself failed. */
int hil_kmodel_check(hil_read_fn rd, void *rctx, uint32_t avail, uint32_t slack,
                     hil_kmodel_t *out, int *io);

#define HIL_E_VERSION 2002
#define HIL_E_FORMAT 2003
#define HIL_E_SHORT 2005

/* -- the agent's state and what its command files share (agent.c) --------------------------- */
#include "hil_agent.h"

#define HIL_OUT_MAX (HIL_AGENT_LINE_MAX + 128)
#define HIL_ARGS_MAX 8

typedef struct {
    uint32_t id;                /* 0: free slot */
    void *handle;               /* the firmware's, from model_load */
    uint8_t *buf;               /* the model buffer the agent allocated */
    uint32_t size;              /* its size */
    uint32_t version;
    uint32_t main_mem;
} hil_model_slot_t;

enum { XFER_NONE, XFER_FILE, XFER_FLASH };

typedef struct {
    int kind;                   /* XFER_* */
    char path[HIL_AGENT_PATH_MAX];
    uint32_t addr;              /* flash address (XFER_FLASH) */
    uint32_t size, next;        /* announced size, next expected offset */
    uint8_t want[32];           /* announced sha256 */
    hil_sha256_t sha;           /* over the bytes received so far */
} hil_transfer_t;

typedef struct {
    const hil_agent_hooks_t *h;
    int ready;
    /* the request line being received */
    char line[HIL_AGENT_LINE_MAX];
    size_t len;
    int overflow;
    uint32_t last_ms;
    /* the request being answered */
    char seq[12];
    int argc;
    char *argv[HIL_ARGS_MAX];
    /* the answer being built */
    char out[HIL_OUT_MAX];
    size_t out_n;
    hil_model_slot_t models[HIL_AGENT_MAX_MODELS];
    uint32_t next_id;
    hil_transfer_t xfer;
    uint8_t chunk[HIL_AGENT_CHUNK_MAX];
} hil_agent_t;

extern hil_agent_t hil_agent_state;

/* Building the answer: begin, fields, send. The seq and the CRC are added by these. */
void hil_out_ok(void);
void hil_out_err(int code, const char *name);           /* then fields, then hil_out_text */
void hil_out_kv_u(const char *key, uint64_t value);
void hil_out_kv_s(const char *key, const char *value);
void hil_out_kv_hex(const char *key, const uint8_t *p, size_t n);
void hil_out_kv_b64(const char *key, const uint8_t *p, size_t n);
void hil_out_text(const char *text);                    /* ": text" of an ERR line */
void hil_out_send(void);
void hil_reply_err(int code, const char *name, const char *text);   /* a whole ERR line */
void hil_log(const char *a, const char *b, uint64_t n); /* "hil-agent: a b n" to the console */

/* Arguments. */
int hil_parse_u32(const char *s, uint32_t *out);
int hil_parse_i64(const char *s, int64_t *out);
int hil_parse_sha(const char *s, uint8_t out[32]);
int hil_path_ok(const char *s);
int hil_heap(hil_heap_stats_t *st);
void *hil_alloc(size_t n);
void hil_free(void *p);

/* Commands (cmd_model.c, cmd_files.c). Each answers exactly once. */
void hil_cmd_load(void);
void hil_cmd_deinit(void);
void hil_cmd_put(void);
void hil_cmd_fput(void);
void hil_cmd_data(void);
void hil_cmd_end(void);
void hil_cmd_abort(void);
void hil_cmd_stat(void);
void hil_cmd_read(void);
void hil_cmd_rm(void);
void hil_cmd_trunc(void);
void hil_cmd_ls(void);
void hil_cmd_fsha(void);
void hil_cmd_fread(void);
uint32_t hil_models_loaded(uint64_t *bytes);
void hil_xfer_cancel(void);

/* Error codes and names (docs/csdk-agent.md lists every line). */
#define E_FRAMING 1001
#define E_BAD_CRC 1002
#define E_TOO_LONG 1003
#define E_UNKNOWN 1004
#define E_ARGS 1005
#define E_NO_TRANSFER 1006
#define E_OFFSET 1007
#define E_SHA 1008
#define E_BASE64 1009
#define E_NO_SPACE 1010
#define E_BAD_PATH 1011
#define E_NOT_FOUND 1012
#define E_IO 1013
#define E_RANGE 1014
#define E_UNSUPPORTED 1015
#define E_NOT_READY 1016
#define E_TIMEOUT 1017
#define E_PARAM 2001
#define E_NO_MEM 2006
#define E_MODELS_FULL 2009
#define E_NO_FILE 2010

#endif
