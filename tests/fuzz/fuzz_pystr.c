/* Fuzz target: string and bytes objects (pystr.c) read out of a fake
 * process built from the input (fuzz_image.h), with every layout: 2.7
 * PyStringObject, PEP 393 compact and legacy strings, bytes objects.
 *
 * root0 is the object's address; root1's low bits pick a small output cap,
 * which must give the same answer as the full one whenever the text fits. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_image.h"
#include "pyflame/base/limits.h"
#include "pyflame/cpython/pystr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t extra = c < 0x80             ? 0
                       : (c & 0xe0) == 0xc0 ? 1
                       : (c & 0xf0) == 0xe0 ? 2
                       : (c & 0xf8) == 0xf0 ? 3
                                            : 9;
        if (extra == 9 || n - i <= extra)
            return false;
        uint32_t cp = extra ? c & (0x3fu >> extra) : c;
        for (size_t j = 1; j <= extra; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

/* Read with an exact-size heap buffer of cap bytes, so writing past the cap
 * is an ASan report. */
static pf_err read_str(struct pf_mem *mem, const struct pf_layout *L, uint64_t addr, size_t cap,
                       char **out, size_t *len)
{
    char *buf = malloc(cap);
    size_t n = 777;
    FUZZ_CHECK(buf != NULL);
    pf_err err = pf_pystr_read(mem, L, addr, buf, cap, &n);
    if (err) {
        FUZZ_CHECK(n == 777);
        free(buf);
        return err;
    }
    FUZZ_CHECK(n < cap && n <= PF_MAX_STRING && buf[n] == '\0' && strlen(buf) <= n);
    if (L->str == PF_STR_PEP393)
        FUZZ_CHECK(valid_utf8((const uint8_t *)buf, n));
    *out = buf;
    *len = n;
    return PF_OK;
}

static void strings(struct pf_mem *mem, const struct pf_layout *L, uint64_t addr, size_t small)
{
    char *big = NULL, *little = NULL;
    size_t big_len = 0, little_len = 0;
    pf_err big_err = read_str(mem, L, addr, PF_MAX_STRING + 1, &big, &big_len);
    pf_err little_err = read_str(mem, L, addr, small, &little, &little_len);

    FUZZ_CHECK(big_err == PF_OK || big_err == PF_ERR_FAULT || big_err == PF_ERR_CORRUPT);
    /* The image never changes, so a smaller cap changes only whether the
     * text fits. */
    FUZZ_CHECK((little_err == PF_OK) == (big_err == PF_OK && big_len < small));
    if (little_err == PF_OK)
        FUZZ_CHECK(little_len == big_len && memcmp(little, big, big_len + 1) == 0);
    free(big);
    free(little);
}

static void bytes(struct pf_mem *mem, const struct pf_layout *L, uint64_t addr, size_t small)
{
    uint8_t *big = (uint8_t *)&big, *little = (uint8_t *)&little;
    size_t big_len = 777, little_len = 777;
    pf_err big_err = pf_pybytes_read(mem, L, addr, PF_MAX_LINETABLE, &big, &big_len);
    pf_err little_err = pf_pybytes_read(mem, L, addr, small, &little, &little_len);

    FUZZ_CHECK(big_err == PF_OK || big_err == PF_ERR_FAULT || big_err == PF_ERR_CORRUPT);
    if (big_err) {
        FUZZ_CHECK(big == (uint8_t *)&big && big_len == 777);
        big = NULL;
    } else {
        FUZZ_CHECK(big != NULL && big_len <= PF_MAX_LINETABLE);
    }
    FUZZ_CHECK((little_err == PF_OK) == (big_err == PF_OK && big_len <= small));
    if (little_err == PF_OK) {
        FUZZ_CHECK(little_len == big_len && memcmp(little, big, big_len) == 0);
        free(little);
    }
    free(big);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in;
    struct pf_mem mem;

    if (!fuzz_input_parse(data, size, &in))
        return 0;
    FUZZ_CHECK(pf_mem_open_image(in.img, &mem) == PF_OK);
    for (size_t i = 0; i < pf_layout_count(); i++) {
        const struct pf_layout *L = pf_layout_at(i);
        strings(&mem, L, in.root0, 1 + (size_t)(in.root1 % 64));
        bytes(&mem, L, in.root0, (size_t)(in.root1 >> 8) % 4096);
    }
    pf_mem_close(&mem);
    fuzz_input_free(&in);
    return 0;
}
