/* image: a fake process memory made of segments at chosen addresses. Unit
 * tests and fuzzers build CPython objects in it and read them back through
 * the same pf_mem interface the live reader uses. It owns the segment bytes. */
#ifndef PYFLAME_IMAGE_H
#define PYFLAME_IMAGE_H

#include "pyflame/base/layers.h"
PF_IN_LAYER(TARGET, "pyflame/target/image.h");

#include <stddef.h>
#include <stdint.h>

#include "pyflame/base/error.h"
#include "pyflame/target/mem.h"

struct pf_image;

pf_err pf_image_new(struct pf_image **out);
void pf_image_free(struct pf_image *img);

/* Map len zeroed bytes at addr. Segments must not overlap. */
pf_err pf_image_map(struct pf_image *img, uint64_t addr, size_t len);

/* Copy bytes into mapped memory; fails unless [addr, addr+len) is mapped. */
pf_err pf_image_write(struct pf_image *img, uint64_t addr, const void *src, size_t len);

/* Convenience: write an integer of the given width (1, 2, 4, 8), little-endian host order. */
pf_err pf_image_write_uint(struct pf_image *img, uint64_t addr, uint64_t value, unsigned width);

/* A reader over the image. The image must outlive it. */
pf_err pf_mem_open_image(struct pf_image *img, struct pf_mem *out);

#endif
