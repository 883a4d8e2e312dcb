/*
 * Console output.  Each kc_printf call is formatted into a buffer first and
 * written under one lock, so lines from different harts never interleave.
 * Formats: %s %c %d %i %u %x %p %%, with l, ll, z modifiers, a width and
 * the 0 flag: what this kernel prints, nothing more.
 */
#include "kc.h"

static kc_lock_t print_lock;

struct out {
    char *buf;
    size_t size, len; /* len counts what would have been written */
};

static void out_char(struct out *o, char ch)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = ch;
    o->len++;
}

static void out_number(struct out *o, uint64_t v, unsigned base, bool negative, unsigned width, char pad)
{
    char tmp[24];
    unsigned n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    if (negative)
        tmp[n++] = '-';
    for (unsigned i = n; i < width; i++)
        out_char(o, pad);
    while (n)
        out_char(o, tmp[--n]);
}

int kc_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            out_char(&o, *f);
            continue;
        }
        f++;
        char pad = ' ';
        unsigned width = 0, longs = 0;
        if (*f == '0') {
            pad = '0';
            f++;
        }
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (unsigned)(*f++ - '0');
        while (*f == 'l' || *f == 'z') {
            longs++;
            f++;
        }
        switch (*f) {
        case 'd':
        case 'i': {
            int64_t v = longs ? va_arg(ap, long) : va_arg(ap, int);
            out_number(&o, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            out_number(&o, v, *f == 'x' ? 16 : 10, false, width, pad);
            break;
        }
        case 'p':
            out_char(&o, '0');
            out_char(&o, 'x');
            out_number(&o, (uintptr_t)va_arg(ap, void *), 16, false, width, pad);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t n = 0;
            while (s[n])
                n++;
            for (size_t i = n; i < width; i++)
                out_char(&o, ' ');
            while (*s)
                out_char(&o, *s++);
            break;
        }
        case 'c':
            out_char(&o, (char)va_arg(ap, int));
            break;
        case '%':
            out_char(&o, '%');
            break;
        case '\0':
            f--; /* a lone % at the end: stop at the terminator */
            break;
        default:
            out_char(&o, '%');
            out_char(&o, *f);
            break;
        }
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

int kc_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kc_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void kc_printf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    kc_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Interrupts stay off in this kernel, so a plain spinlock suffices. */
    kc_lock(&print_lock);
    for (const char *s = buf; *s; s++) {
        if (*s == '\n')
            sbi_console_putchar('\r');
        sbi_console_putchar(*s);
    }
    kc_unlock(&print_lock);
}
