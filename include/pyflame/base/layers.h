/* layers: the ranks of pyflame's layers, lowest first, and the check every
 * header makes that it is not included from below its own layer
 * (docs/design.md, "Layers"):
 *
 *   base     errors, logging, limits, text escaping, interning, the
 *            hash index, the clock, a binary search
 *   target   the process: memory (live, image), prefetch, maps, ELF, ptrace
 *   native   native stacks: unwinding, merging with the Python frames
 *   cpython  CPython's structures: layouts, discovery, frames, code
 *            objects, line tables, strings, stack copies
 *   profile  aggregation of the stacks read
 *   sample   the sampling loop and its stopping strategies
 *   output   the writers, files, the live view's model, the HTTP server
 *   app      the command line and the terminal UI
 *
 * The build compiles each layer's sources with -DPF_LAYER=<its rank>
 * (meson.build); code built without it (the unit tests, the fuzzers) sees
 * every layer. */
#ifndef PYFLAME_LAYERS_H
#define PYFLAME_LAYERS_H

#define PF_LAYER_BASE 1
#define PF_LAYER_TARGET 2
#define PF_LAYER_NATIVE 3
#define PF_LAYER_CPYTHON 4
#define PF_LAYER_PROFILE 5
#define PF_LAYER_SAMPLE 6
#define PF_LAYER_OUTPUT 7
#define PF_LAYER_APP 8

#ifndef PF_LAYER
#define PF_LAYER PF_LAYER_APP
#endif

/* In a header of layer L: fails the compilation of any module of a lower
 * layer that includes it, naming the header and its layer (the compiler
 * names the including file, whose folder is its layer). */
#define PF_IN_LAYER(L, header)                                                                  \
    _Static_assert(PF_LAYER >= PF_LAYER_##L, header " is in layer " #L                            \
                   ": only modules of that layer and the layers above it may include it "        \
                   "(docs/design.md, Layers)")

#endif
