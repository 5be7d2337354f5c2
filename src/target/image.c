#include "pyflame/target/image.h"

#include <stdlib.h>
#include <string.h>

#include "pyflame/base/grow.h"

struct segment {
    uint64_t addr;
    size_t len;
    uint8_t *bytes;
};

struct pf_image {
    struct segment *seg;
    size_t n, cap;
};

pf_err pf_image_new(struct pf_image **out)
{
    struct pf_image *img = calloc(1, sizeof(*img));
    if (!img)
        return PF_ERR_NOMEM;
    *out = img;
    return PF_OK;
}

void pf_image_free(struct pf_image *img)
{
    if (!img)
        return;
    for (size_t i = 0; i < img->n; i++)
        free(img->seg[i].bytes);
    free(img->seg);
    free(img);
}

pf_err pf_image_map(struct pf_image *img, uint64_t addr, size_t len)
{
    if (len == 0 || addr + len < addr)
        return PF_ERR_CORRUPT;
    for (size_t i = 0; i < img->n; i++) {
        const struct segment *s = &img->seg[i];
        if (addr < s->addr + s->len && s->addr < addr + len)
            return PF_ERR_CORRUPT;
    }
    struct segment *seg = pf_grow(img->seg, img->n, &img->cap, sizeof(*seg), 8);
    if (!seg)
        return PF_ERR_NOMEM;
    img->seg = seg;
    uint8_t *bytes = calloc(1, len);
    if (!bytes)
        return PF_ERR_NOMEM;
    img->seg[img->n++] = (struct segment){.addr = addr, .len = len, .bytes = bytes};
    return PF_OK;
}

/* The segment holding all of [addr, addr+len), or NULL. */
static struct segment *find(const struct pf_image *img, uint64_t addr, size_t len)
{
    for (size_t i = 0; i < img->n; i++) {
        struct segment *s = &img->seg[i];
        if (addr >= s->addr && addr - s->addr <= s->len && s->len - (addr - s->addr) >= len)
            return s;
    }
    return NULL;
}

pf_err pf_image_write(struct pf_image *img, uint64_t addr, const void *src, size_t len)
{
    struct segment *s = find(img, addr, len);
    if (!s)
        return PF_ERR_FAULT;
    memcpy(s->bytes + (addr - s->addr), src, len);
    return PF_OK;
}

pf_err pf_image_write_uint(struct pf_image *img, uint64_t addr, uint64_t value, unsigned width)
{
    uint8_t b1 = (uint8_t)value;
    uint16_t b2 = (uint16_t)value;
    uint32_t b4 = (uint32_t)value;
    switch (width) {
    case 1: return pf_image_write(img, addr, &b1, 1);
    case 2: return pf_image_write(img, addr, &b2, 2);
    case 4: return pf_image_write(img, addr, &b4, 4);
    case 8: return pf_image_write(img, addr, &value, 8);
    default: return PF_ERR_CORRUPT;
    }
}

/* Like a process's memory, adjacent segments read as one range. */
static pf_err image_read(void *ctx, uint64_t addr, void *dst, size_t len)
{
    while (len > 0) {
        const struct segment *s = find(ctx, addr, 1);
        if (!s)
            return PF_ERR_FAULT;
        size_t n = s->len - (addr - s->addr);
        if (n > len)
            n = len;
        memcpy(dst, s->bytes + (addr - s->addr), n);
        dst = (uint8_t *)dst + n;
        addr += n;
        len -= n;
    }
    return PF_OK;
}

static pf_err image_readv(void *ctx, const struct pf_iov *iov, size_t n, unsigned char *ok)
{
    for (size_t i = 0; i < n; i++)
        ok[i] = image_read(ctx, iov[i].addr, iov[i].dst, iov[i].len) == PF_OK;
    return PF_OK;
}

static const struct pf_mem_ops IMAGE_OPS = {
    .read = image_read,
    .readv = image_readv,
    .close = NULL, /* the image belongs to the caller */
};

pf_err pf_mem_open_image(struct pf_image *img, struct pf_mem *out)
{
    *out = (struct pf_mem){.ops = &IMAGE_OPS, .ctx = img};
    return PF_OK;
}
