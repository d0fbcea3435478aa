/*
 * The agent's core: receiving request lines, checking their framing, answering them.
 *
 *   request:  >SEQ VERB [ARG ...] *CRC\n       answer:  <SEQ OK [KEY=VALUE ...] *CRC\r\n
 *                                                       <SEQ ERR CODE NAME [KEY=VALUE ...]: TEXT *CRC\r\n
 *   after a reset, unasked:                             <- BOOT KEY=VALUE ... *CRC\r\n
 *
 * CRC is the CRC-32 (zlib's) of every byte before " *", as 8 lowercase hex digits. Every line
 * that is not blank gets exactly one answer; one the agent cannot read gets an ERR with seq "-"
 * when not even the seq could be read. The agent's own remarks start "hil-agent: " and carry no
 * framing, so the framework logs them and reads past them.
 */
#include <string.h>
#include <stdlib.h>
#include "agent_internal.h"

hil_agent_t hil_agent_state;
#define S hil_agent_state

/* -- the answer ------------------------------------------------------------------------------ */
static void out_raw(const char *s, size_t n)
{
    /* Fields are bounded by the callers (paths < 64, payloads <= 512 bytes of base64), so this
     * never truncates a well-formed answer; it only protects the buffer. */
    if (S.out_n + n > HIL_OUT_MAX - 16)
        n = HIL_OUT_MAX - 16 - S.out_n;
    memcpy(S.out + S.out_n, s, n);
    S.out_n += n;
}

static void out_str(const char *s)
{
    out_raw(s, strlen(s));
}

static void out_u(uint64_t v)
{
    char b[24];
    int i = 0;
    do {
        b[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        out_raw(&b[--i], 1);
}

static void out_begin(void)
{
    S.out_n = 0;
    out_str("<");
    out_str(S.seq);
}

void hil_out_ok(void)
{
    out_begin();
    out_str(" OK");
}

void hil_out_err(int code, const char *name)
{
    out_begin();
    out_str(" ERR ");
    out_u((uint64_t)code);
    out_str(" ");
    out_str(name);
}

void hil_out_kv_u(const char *key, uint64_t value)
{
    out_str(" ");
    out_str(key);
    out_str("=");
    out_u(value);
}

void hil_out_kv_s(const char *key, const char *value)
{
    out_str(" ");
    out_str(key);
    out_str("=");
    out_str(value);
}

void hil_out_kv_hex(const char *key, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    out_str(" ");
    out_str(key);
    out_str("=");
    for (size_t i = 0; i < n; i++) {
        char b[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        out_raw(b, 2);
    }
}

void hil_out_kv_b64(const char *key, const uint8_t *p, size_t n)
{
    char b[4 * ((HIL_AGENT_CHUNK_MAX + 2) / 3) + 1];
    if (n > HIL_AGENT_CHUNK_MAX)
        n = HIL_AGENT_CHUNK_MAX;
    hil_b64_encode(p, n, b);
    hil_out_kv_s(key, b);
}

void hil_out_text(const char *text)
{
    out_str(": ");
    out_str(text);
}

void hil_out_send(void)
{
    static const char hex[] = "0123456789abcdef";
    uint32_t crc = hil_crc32(0, S.out, S.out_n);
    char tail[13] = " *";
    for (int i = 0; i < 8; i++)
        tail[2 + i] = hex[(crc >> (28 - 4 * i)) & 15];
    tail[10] = '\r';
    tail[11] = '\n';
    memcpy(S.out + S.out_n, tail, 12);   /* out_raw keeps 16 bytes free for this */
    S.h->write(S.h->ctx, S.out, S.out_n + 12);
}

void hil_reply_err(int code, const char *name, const char *text)
{
    hil_out_err(code, name);
    hil_out_text(text);
    hil_out_send();
}

void hil_log(const char *a, const char *b, uint64_t n)
{
    /* Plain text for the serial log; never framed, so never mistaken for an answer. Built in
     * the answer buffer, which is free here: callers log before they start their answer. */
    S.out_n = 0;
    out_str("hil-agent: ");
    out_str(a);
    out_str(" ");
    out_str(b);
    out_str(" ");
    out_u(n);
    out_str("\r\n");
    S.h->write(S.h->ctx, S.out, S.out_n);
    S.out_n = 0;
}

/* -- arguments ------------------------------------------------------------------------------- */
int hil_parse_i64(const char *s, int64_t *out)
{
    int neg = 0;
    uint64_t v = 0;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s)
        return -1;
    for (; *s; s++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            return -1;
        if (v > (0x7FFFFFFFFFFFFFFFull - (uint64_t)d) / (uint64_t)base)
            return -1;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int hil_parse_u32(const char *s, uint32_t *out)
{
    int64_t v;
    if (*s == '-' || hil_parse_i64(s, &v) || v > 0xFFFFFFFFll)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int hil_parse_sha(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (int i = 0; i < 64; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        if (i % 2)
            out[i / 2] |= (uint8_t)d;
        else
            out[i / 2] = (uint8_t)(d << 4);
    }
    return 0;
}

/* "/name[/name...]" of [A-Za-z0-9._-], shorter than HIL_AGENT_PATH_MAX, no "." or ".." part. */
int hil_path_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n >= HIL_AGENT_PATH_MAX || s[0] != '/' || s[n - 1] == '/')
        return 0;
    const char *part = s + 1;
    for (const char *p = s + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - part);
            if (len == 0 || (len == 1 && part[0] == '.') || (len == 2 && part[0] == '.' && part[1] == '.'))
                return 0;
            if (*p == '\0')
                return 1;
            part = p + 1;
            continue;
        }
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
}

int hil_heap(hil_heap_stats_t *st)
{
    st->total = st->free = 0;
    return S.h->heap_stats(S.h->ctx, st);
}

void *hil_alloc(size_t n)
{
    return S.h->alloc ? S.h->alloc(S.h->ctx, n) : malloc(n);
}

void hil_free(void *p)
{
    if (S.h->free)
        S.h->free(S.h->ctx, p);
    else
        free(p);
}

/* -- small commands -------------------------------------------------------------------------- */
static void cmd_hello(void)
{
    hil_heap_stats_t st;
    hil_heap(&st);
    hil_out_ok();
    hil_out_kv_s("agent", HIL_AGENT_VERSION);
    hil_out_kv_u("proto", HIL_AGENT_PROTOCOL);
    hil_out_kv_s("board", S.h->board ? S.h->board : "unknown");
    hil_out_kv_s("build", S.h->build_id ? S.h->build_id : "unknown");
    hil_out_kv_u("heap_total", st.total);
    hil_out_kv_u("heap_free", st.free);
    hil_out_kv_u("line_max", HIL_AGENT_LINE_MAX);
    hil_out_kv_u("chunk_max", HIL_AGENT_CHUNK_MAX);
    hil_out_kv_s("kmodel", "3,4");
    hil_out_kv_u("max_models", HIL_AGENT_MAX_MODELS);
    hil_out_kv_u("flash_size", S.h->flash_read ? S.h->flash_size : 0);
    hil_out_kv_u("files", S.h->file_size != NULL);
    if (S.h->now_ms)
        hil_out_kv_u("uptime_ms", S.h->now_ms(S.h->ctx));
    hil_out_send();
}

static void cmd_mem(void)
{
    hil_heap_stats_t st;
    uint64_t bytes;
    hil_heap(&st);
    uint32_t n = hil_models_loaded(&bytes);
    hil_out_ok();
    hil_out_kv_u("heap_total", st.total);
    hil_out_kv_u("heap_free", st.free);
    hil_out_kv_u("models", n);
    hil_out_kv_u("model_bytes", bytes);
    hil_out_send();
}

static void cmd_reboot(void)
{
    if (!S.h->reboot) {
        hil_reply_err(E_UNSUPPORTED, "UNSUPPORTED", "this firmware has no reboot hook");
        return;
    }
    hil_out_ok();
    hil_out_send();
    S.h->reboot(S.h->ctx);
}

typedef struct {
    const char *verb;
    void (*run)(void);
    int min_args, max_args;     /* after the verb */
    const char *usage;
} verb_t;

static const verb_t VERBS[] = {
    {"HELLO", cmd_hello, 0, 0, "usage: HELLO"},
    {"MEM", cmd_mem, 0, 0, "usage: MEM"},
    {"LOAD", hil_cmd_load, 2, 3, "usage: LOAD FILE <path> | LOAD FLASH <offset> [<size>]"},
    {"DEINIT", hil_cmd_deinit, 1, 1, "usage: DEINIT <id> | DEINIT ALL"},
    {"PUT", hil_cmd_put, 3, 3, "usage: PUT <path> <size> <sha256>"},
    {"FPUT", hil_cmd_fput, 3, 3, "usage: FPUT <offset> <size> <sha256>"},
    {"DATA", hil_cmd_data, 2, 2, "usage: DATA <offset> <base64>"},
    {"END", hil_cmd_end, 0, 0, "usage: END"},
    {"ABORT", hil_cmd_abort, 0, 0, "usage: ABORT"},
    {"STAT", hil_cmd_stat, 1, 1, "usage: STAT <path>"},
    {"READ", hil_cmd_read, 3, 3, "usage: READ <path> <offset> <count>"},
    {"RM", hil_cmd_rm, 1, 1, "usage: RM <path>"},
    {"TRUNC", hil_cmd_trunc, 2, 2, "usage: TRUNC <path> <size>"},
    {"LS", hil_cmd_ls, 1, 1, "usage: LS <index>"},
    {"FSHA", hil_cmd_fsha, 2, 2, "usage: FSHA <offset> <size>"},
    {"FREAD", hil_cmd_fread, 2, 2, "usage: FREAD <offset> <count>"},
    {"REBOOT", cmd_reboot, 0, 0, "usage: REBOOT"},
};

/* -- one received line ----------------------------------------------------------------------- */
static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The seq right after '>' (1-9 digits, then a space or the end) into S.seq, else "-". */
static void take_seq(const char *line, size_t len)
{
    size_t i = 1;
    strcpy(S.seq, "-");
    if (len < 2 || line[0] != '>')
        return;
    while (i < len && i <= 9 && line[i] >= '0' && line[i] <= '9')
        i++;
    if (i == 1 || (i < len && line[i] != ' '))
        return;
    memcpy(S.seq, line + 1, i - 1);
    S.seq[i - 1] = '\0';
}

static void run_line(char *line, size_t len)
{
    take_seq(line, len);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7E) {
            hil_reply_err(E_FRAMING, "FRAMING", "expected >SEQ VERB [ARGS] *CRC32 in printable ASCII");
            return;
        }
    }
    /* " *" and 8 hex digits end the line; the CRC covers everything before them */
    if (S.seq[0] == '-' || len < 12 || line[len - 10] != ' ' || line[len - 9] != '*') {
        hil_reply_err(E_FRAMING, "FRAMING", "expected >SEQ VERB [ARGS] *CRC32 in printable ASCII");
        return;
    }
    uint32_t want = 0;
    for (size_t i = len - 8; i < len; i++) {
        int d = hexval(line[i]);
        if (d < 0) {
            hil_reply_err(E_FRAMING, "FRAMING", "expected >SEQ VERB [ARGS] *CRC32 in printable ASCII");
            return;
        }
        want = want << 4 | (uint32_t)d;
    }
    if (hil_crc32(0, line, len - 10) != want) {
        hil_reply_err(E_BAD_CRC, "BAD_CRC", "line checksum does not match");
        return;
    }
    line[len - 10] = '\0';
    /* words after the seq */
    char *p = line + 1 + strlen(S.seq);
    S.argc = 0;
    while (*p) {
        while (*p == ' ')
            *p++ = '\0';
        if (!*p)
            break;
        if (S.argc == HIL_ARGS_MAX) {
            S.argc++;
            break;
        }
        S.argv[S.argc++] = p;
        while (*p && *p != ' ')
            p++;
    }
    if (S.argc == 0) {
        hil_reply_err(E_FRAMING, "FRAMING", "expected >SEQ VERB [ARGS] *CRC32 in printable ASCII");
        return;
    }
    if (!S.ready) {
        hil_reply_err(E_NOT_READY, "NOT_READY", "firmware hooks missing: see hil_agent_init");
        return;
    }
    for (size_t v = 0; v < sizeof VERBS / sizeof VERBS[0]; v++) {
        if (strcmp(S.argv[0], VERBS[v].verb) == 0) {
            int n = S.argc - 1;
            if (n < VERBS[v].min_args || n > VERBS[v].max_args) {
                hil_reply_err(E_ARGS, "ARGS", VERBS[v].usage);
                return;
            }
            VERBS[v].run();
            return;
        }
    }
    hil_reply_err(E_UNKNOWN, "UNKNOWN_VERB", "unknown verb: HELLO MEM LOAD DEINIT PUT FPUT DATA "
                  "END ABORT STAT READ RM TRUNC LS FSHA FREAD REBOOT");
}

static uint32_t now_ms(void)
{
    return S.h && S.h->now_ms ? S.h->now_ms(S.h->ctx) : 0;
}

void hil_agent_feed(int byte)
{
    if (!S.h || byte < 0)
        return;
    if (byte == '\n') {
        if (S.overflow) {
            take_seq(S.line, S.len);
            hil_reply_err(E_TOO_LONG, "TOO_LONG", "line longer than 1024 bytes");
        } else if (S.len) {
            run_line(S.line, S.len);
        }
        S.len = 0;
        S.overflow = 0;
        return;
    }
    if (byte == '\r')
        return;
    S.last_ms = now_ms();
    if (S.len < sizeof S.line - 1)
        S.line[S.len++] = (char)byte;
    else
        S.overflow = 1;     /* keep the start (for the seq), drop the rest up to the newline */
}

void hil_agent_poll(void)
{
    if (!S.h)
        return;
    for (;;) {
        int c = S.h->getc(S.h->ctx);
        if (c < 0)
            break;
        hil_agent_feed(c);
    }
    /* A half line whose sender went quiet is dropped, so the next request starts clean. */
    if (S.len && S.h->now_ms && now_ms() - S.last_ms > HIL_AGENT_IDLE_MS) {
        take_seq(S.line, S.len);
        hil_reply_err(E_TIMEOUT, "TIMEOUT", "partial line dropped after 2000 ms without a newline");
        S.len = 0;
        S.overflow = 0;
    }
}

int hil_agent_init(const hil_agent_hooks_t *hooks)
{
    memset(&S, 0, sizeof S);
    S.h = hooks;
    S.next_id = 1;
    if (!hooks || !hooks->getc || !hooks->write)
        return -1;      /* nothing to talk through: stay silent */
    S.ready = hooks->heap_stats && hooks->model_load && hooks->model_free;
    hil_heap_stats_t st = {0, 0};
    if (hooks->heap_stats)
        hooks->heap_stats(hooks->ctx, &st);
    strcpy(S.seq, "-");
    out_begin();
    out_str(" BOOT");
    hil_out_kv_s("agent", HIL_AGENT_VERSION);
    hil_out_kv_u("proto", HIL_AGENT_PROTOCOL);
    hil_out_kv_s("board", hooks->board ? hooks->board : "unknown");
    hil_out_kv_s("build", hooks->build_id ? hooks->build_id : "unknown");
    hil_out_kv_u("heap_free", st.free);
    hil_out_kv_u("ready", (uint64_t)S.ready);
    hil_out_send();
    return S.ready ? 0 : -1;
}
