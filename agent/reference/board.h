/*
 * The reference firmware's board: what `qemu-system-riscv64 -M virt` offers in place of a K210.
 *
 *   0x80000000  6 MiB   general SRAM: image, stacks, heap (k210-virt.ld)
 *   0x81000000  16 MiB  "SPI flash": kept in RAM, persistent in QEMU's RAM backing file
 *   0x82000000  32 MiB  "SD card": the file store (store.c), persistent the same way
 *   0x10000000          NS16550A UART: the console (the K210's is UARTHS at 0x38000000)
 *   0x02000000          CLINT: mtime at 10 MHz
 *   0x00100000          SiFive test device: writing 0x7777 resets the machine
 *
 * Not modelled: the KPU and its 2 MiB AI SRAM, DMA, caches (the K210's uncached 0x40000000
 * alias of the SRAM), the SPI flash controller and its timing.
 */
#ifndef REF_BOARD_H
#define REF_BOARD_H

#include <stddef.h>
#include <stdint.h>

#define FLASH_BASE 0x81000000u
#define FLASH_SIZE (16u * 1024 * 1024)
#define STORE_BASE 0x82000000u
#define STORE_SIZE (32u * 1024 * 1024)

void board_init(void);
int board_getc(void);
void board_write(const char *buf, size_t n);
void board_puts(const char *s);
uint64_t board_now_us(void);
void board_wait(uint32_t max_us);       /* sleep until the UART has data, at most max_us */
void board_reset(void) __attribute__((noreturn));
void board_fault(const char *what) __attribute__((noreturn));
void board_heap(uint64_t *total, uint64_t *free_bytes);

/* The file store: the "SD card" mounted at /sd (store.c). Returns HIL_* codes. */
void store_mount(void);
int store_size(const char *path, uint32_t *size);
int store_read(const char *path, uint32_t off, void *buf, uint32_t n);
int store_write_begin(const char *path, uint32_t size);
int store_write(uint32_t off, const void *buf, uint32_t n);
int store_write_end(int commit);
int store_remove(const char *path);
int store_truncate(const char *path, uint32_t size);
int store_list(uint32_t index, char *path, size_t path_max, uint32_t *size);

/* The standalone SDK's model loader, re-implemented (sdk_loader.c). */
typedef struct sdk_model sdk_model_t;
int sdk_kpu_load_kmodel(sdk_model_t *ctx, const uint8_t *buffer);
void sdk_kpu_model_free(sdk_model_t *ctx);
size_t sdk_model_context_size(void);

#endif
