/* Frames for the writer and view tests: interned strings and frames, each
 * asserted to intern. Include after <cmocka.h> and pyflame/intern.h. */
#ifndef PYFLAME_TEST_FRAMES_FIXTURE_H
#define PYFLAME_TEST_FRAMES_FIXTURE_H

#include <string.h>

__attribute__((unused)) static uint32_t str(struct pf_intern *t, const char *s)
{
    uint32_t id;
    assert_int_equal(pf_intern_str(t, s, strlen(s), &id), PF_OK);
    return id;
}

__attribute__((unused)) static uint32_t frame(struct pf_intern *t, int kind, const char *file,
                                              const char *name, int line)
{
    struct pf_frame_text f = {
        .kind = (uint8_t)kind, .file = file ? str(t, file) : 0, .name = str(t, name), .line = line};
    uint32_t id;
    assert_int_equal(pf_intern_frame(t, &f, &id), PF_OK);
    return id;
}

/* A Python frame, FILE:NAME:LINE. */
__attribute__((unused)) static uint32_t py(struct pf_intern *t, const char *file, const char *name, int line)
{
    return frame(t, PF_FRAME_PYTHON, file, name, line);
}

/* A label such as "(truncated)" or "(thread 7 worker)". */
__attribute__((unused)) static uint32_t pseudo(struct pf_intern *t, const char *label)
{
    return frame(t, PF_FRAME_PSEUDO, NULL, label, 0);
}

#endif
