/* The reference firmware's board support on QEMU virt (see board.h for the memory map). */
#define _DEFAULT_SOURCE     /* sbrk() */
#include <malloc.h>
#include <unistd.h>
#include "board.h"

#define UART ((volatile uint8_t *)0x10000000u)
#define UART_RBR 0
#define UART_THR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

#define MTIME (*(volatile uint64_t *)0x0200BFF8u)
#define MTIMECMP (*(volatile uint64_t *)0x02004000u)   /* hart 0 */
#define TICKS_PER_US 10u                                /* virt's timebase: 10 MHz */
#define TEST_DEVICE (*(volatile uint32_t *)0x00100000u)
#define PLIC_PRIORITY(irq) (*(volatile uint32_t *)(0x0C000000u + 4u * (irq)))
#define PLIC_ENABLE0 (*(volatile uint32_t *)0x0C002000u)      /* hart 0, M-mode */
#define PLIC_THRESHOLD0 (*(volatile uint32_t *)0x0C200000u)
#define PLIC_CLAIM0 (*(volatile uint32_t *)0x0C200004u)
#define UART_IRQ 10u
#define TEST_RESET 0x7777u

extern char __heap_start[], __heap_end[];

static void trap_entry(void) __attribute__((aligned(4), noreturn));

void board_init(void)
{
    /* Divisor 1: QEMU times the RX FIFO's "pause" interrupt in characters of the set baud, so
     * the fastest baud gets a short line end to the CPU soonest. (Bytes are not paced.) */
    UART[UART_LCR] = 0x80;      /* DLAB */
    UART[0] = 1;
    UART[1] = 0;
    UART[UART_LCR] = 0x03;      /* 8N1 */
    UART[UART_FCR] = 0xC7;      /* FIFOs on and cleared, RX interrupt at 14 bytes (or a pause) */
    UART[UART_IER] = 0x01;      /* received data available */
    PLIC_PRIORITY(UART_IRQ) = 1;
    PLIC_ENABLE0 = 1u << UART_IRQ;
    PLIC_THRESHOLD0 = 0;
    MTIMECMP = UINT64_MAX;
    /* Faults print where they happened and stop, as a crashed board does. Interrupts are never
     * taken (mstatus.MIE stays 0); the UART's and the timer's only wake board_wait's wfi. */
    __asm__ volatile("csrw mtvec, %0" ::"r"((uintptr_t)trap_entry));
    __asm__ volatile("csrs mie, %0" ::"r"((1u << 7) | (1u << 11)));   /* MTIE, MEIE */
}

int board_getc(void)
{
    return (UART[UART_LSR] & LSR_DR) ? UART[UART_RBR] : -1;
}

void board_write(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        while (!(UART[UART_LSR] & LSR_THRE))
            ;
        UART[UART_THR] = (uint8_t)buf[i];
    }
}

void board_puts(const char *s)
{
    while (*s)
        board_write(s++, 1);
}

uint64_t board_now_us(void)
{
    return MTIME / TICKS_PER_US;
}

void board_wait(uint32_t max_us)
{
    /* Sleep in wfi until the UART has data or max_us pass. Spinning on the UART's status
     * register instead would keep QEMU's CPU thread contending with the thread that feeds
     * the UART, and the console would crawl. */
    MTIMECMP = MTIME + (uint64_t)max_us * TICKS_PER_US;
    if (!(UART[UART_LSR] & LSR_DR))
        __asm__ volatile("wfi");
    MTIMECMP = UINT64_MAX;
    uint32_t irq = PLIC_CLAIM0;
    if (irq)
        PLIC_CLAIM0 = irq;      /* complete, so the next UART interrupt is forwarded */
}

void board_reset(void)
{
    TEST_DEVICE = TEST_RESET;
    for (;;)
        ;
}

static void put_hex(uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char b[18] = "0x";
    for (int i = 0; i < 16; i++)
        b[2 + i] = hex[(v >> (60 - 4 * i)) & 15];
    board_write(b, 18);
}

void board_fault(const char *what)
{
    board_puts("\r\nreference firmware: halted: ");
    board_puts(what);
    board_puts("\r\n");
    for (;;)
        __asm__ volatile("wfi");
}

static void trap_entry(void)
{
    uint64_t cause, epc, tval;
    __asm__ volatile("csrr %0, mcause" : "=r"(cause));
    __asm__ volatile("csrr %0, mepc" : "=r"(epc));
    __asm__ volatile("csrr %0, mtval" : "=r"(tval));
    board_puts("\r\nreference firmware: trap mcause=");
    put_hex(cause);
    board_puts(" mepc=");
    put_hex(epc);
    board_puts(" mtval=");
    put_hex(tval);
    board_fault("exception");
}

void board_heap(uint64_t *total, uint64_t *free_bytes)
{
    /* picolibc's malloc grows the break with sbrk up to __heap_end: free is what was never
     * taken plus the free chunks malloc holds. */
    struct mallinfo mi = mallinfo();
    char *brk = (char *)sbrk(0);
    *total = (uint64_t)(__heap_end - __heap_start);
    *free_bytes = (uint64_t)(__heap_end - brk) + (uint64_t)mi.fordblks;
}
