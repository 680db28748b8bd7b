#ifndef CLIBFUZZER_H
#define CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (in the runtime that `-sanitize=fuzzer` links): runs the fuzzing loop with `callback` as the
/// target. Declared here because Swift cannot call a C function it has no declaration of; only the fuzz build
/// (`-DFUZZING`) calls it, so a normal build never needs the symbol.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
