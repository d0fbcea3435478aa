/*
 * The reference firmware's "SD card": a small file store in the RAM window at STORE_BASE, which
 * QEMU keeps in its RAM backing file, so files survive resets and emulator restarts the way an
 * SD card does. Mounted at /sd: paths outside /sd/ are HIL_EINVAL.
 *
 * Layout: a directory (magic, count, 64 entries {path, offset, size}, CRC-32 of it all) in the
 * first 32 KiB, file bytes after it, packed. A file being written goes after the last file; it
 * joins the directory only when committed, in one directory update, so a reset mid-write leaves
 * the old file as it was. A directory whose magic or CRC is wrong at boot is formatted.
 */
#include <string.h>
#include "board.h"
#include "hil_agent.h"

#define MAGIC "HILSTOR2"
#define MAX_FILES 64
#define DATA_START 32768u
#define MOUNT "/sd/"

typedef struct {
    char path[HIL_AGENT_PATH_MAX];
    uint32_t off;
    uint32_t size;
} entry_t;

typedef struct {
    char magic[8];
    uint32_t count;
    uint32_t crc;       /* of count and entries */
    entry_t e[MAX_FILES];
} dir_t;

_Static_assert(sizeof(dir_t) <= DATA_START, "the directory must fit before the data");

#define DIR ((dir_t *)STORE_BASE)
#define DATA(off) ((uint8_t *)(uintptr_t)(STORE_BASE + (off)))

static struct {
    int active;
    char path[HIL_AGENT_PATH_MAX];
    uint32_t off, size;
} pending;

extern uint32_t hil_crc32(uint32_t crc, const void *data, size_t n);

static uint32_t dir_crc(void)
{
    uint32_t crc = hil_crc32(0, &DIR->count, sizeof DIR->count);
    return hil_crc32(crc, DIR->e, sizeof DIR->e);
}

static void dir_commit(void)
{
    DIR->crc = dir_crc();
}

void store_mount(void)
{
    if (memcmp(DIR->magic, MAGIC, 8) != 0 || DIR->count > MAX_FILES || DIR->crc != dir_crc()) {
        memset(DIR, 0, sizeof *DIR);
        memcpy(DIR->magic, MAGIC, 8);
        dir_commit();
        board_puts("reference firmware: file store formatted\r\n");
    }
}

static int on_card(const char *path)
{
    return strncmp(path, MOUNT, strlen(MOUNT)) == 0 && strlen(path) < HIL_AGENT_PATH_MAX;
}

static int find(const char *path)
{
    for (uint32_t i = 0; i < DIR->count; i++)
        if (strcmp(DIR->e[i].path, path) == 0)
            return (int)i;
    return -1;
}

static int lookup(const char *path, entry_t **out)
{
    if (!on_card(path))
        return HIL_EINVAL;
    int i = find(path);
    if (i < 0)
        return HIL_ENOENT;
    *out = &DIR->e[i];
    return HIL_OK;
}

int store_size(const char *path, uint32_t *size)
{
    entry_t *e;
    int rc = lookup(path, &e);
    if (rc == HIL_OK)
        *size = e->size;
    return rc;
}

int store_read(const char *path, uint32_t off, void *buf, uint32_t n)
{
    entry_t *e;
    int rc = lookup(path, &e);
    if (rc != HIL_OK)
        return rc;
    if ((uint64_t)off + n > e->size)
        return HIL_EIO;
    memcpy(buf, DATA(e->off + off), n);
    return HIL_OK;
}

static uint32_t used_end(void)
{
    uint32_t end = DATA_START;
    for (uint32_t i = 0; i < DIR->count; i++)
        if (DIR->e[i].off + DIR->e[i].size > end)
            end = DIR->e[i].off + DIR->e[i].size;
    return end;
}

/* Move every file down so they are packed from DATA_START, in offset order. */
static void compact(void)
{
    uint8_t done[MAX_FILES] = {0};
    uint32_t at = DATA_START;
    for (uint32_t k = 0; k < DIR->count; k++) {
        int next = -1;
        for (uint32_t i = 0; i < DIR->count; i++)
            if (!done[i] && (next < 0 || DIR->e[i].off < DIR->e[next].off))
                next = (int)i;
        entry_t *e = &DIR->e[next];
        done[next] = 1;
        if (e->off != at) {
            memmove(DATA(at), DATA(e->off), e->size);
            e->off = at;
            dir_commit();
        }
        at += e->size;
    }
}

int store_write_begin(const char *path, uint32_t size)
{
    if (!on_card(path))
        return HIL_EINVAL;
    if (find(path) < 0 && DIR->count >= MAX_FILES)
        return HIL_ENOSPC;
    if ((uint64_t)used_end() + size > STORE_SIZE) {
        compact();
        if ((uint64_t)used_end() + size > STORE_SIZE)
            return HIL_ENOSPC;
    }
    pending.active = 1;
    strcpy(pending.path, path);
    pending.off = used_end();
    pending.size = size;
    return HIL_OK;
}

int store_write(uint32_t off, const void *buf, uint32_t n)
{
    if (!pending.active || (uint64_t)off + n > pending.size)
        return HIL_EIO;
    memcpy(DATA(pending.off + off), buf, n);
    return HIL_OK;
}

int store_write_end(int commit)
{
    if (!pending.active)
        return HIL_EIO;
    pending.active = 0;
    if (!commit)
        return HIL_OK;
    int i = find(pending.path);
    if (i < 0)
        i = (int)DIR->count++;
    entry_t *e = &DIR->e[i];
    strcpy(e->path, pending.path);
    e->off = pending.off;
    e->size = pending.size;
    dir_commit();
    return HIL_OK;
}

int store_remove(const char *path)
{
    entry_t *e;
    int rc = lookup(path, &e);
    if (rc != HIL_OK)
        return rc;
    *e = DIR->e[--DIR->count];
    memset(&DIR->e[DIR->count], 0, sizeof(entry_t));
    dir_commit();
    return HIL_OK;
}

int store_truncate(const char *path, uint32_t size)
{
    entry_t *e;
    int rc = lookup(path, &e);
    if (rc != HIL_OK)
        return rc;
    if (size <= e->size) {
        e->size = size;
        dir_commit();
        return HIL_OK;
    }
    /* Growing: the file is rewritten at the end of the data (as any rewrite is), its old bytes
     * first, zeros after; the directory switches to the new copy in one update. */
    uint32_t old_size = e->size;
    rc = store_write_begin(path, size);
    if (rc != HIL_OK)
        return rc;
    e = &DIR->e[find(path)];            /* compaction may have moved it */
    memmove(DATA(pending.off), DATA(e->off), old_size);
    memset(DATA(pending.off + old_size), 0, size - old_size);
    return store_write_end(1);
}

int store_list(uint32_t index, char *path, size_t path_max, uint32_t *size)
{
    if (index >= DIR->count)
        return HIL_ENOENT;
    strncpy(path, DIR->e[index].path, path_max - 1);
    path[path_max - 1] = '\0';
    *size = DIR->e[index].size;
    return HIL_OK;
}
