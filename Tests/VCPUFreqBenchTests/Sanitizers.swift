import Glibc

/// Whether this test process runs under AddressSanitizer or
/// ThreadSanitizer (`swift test --sanitize=address|thread`). The LD_PRELOAD
/// allocation counter is then built with the sanitizer too and preloaded
/// into programs that do not load the sanitizer's runtime first (`/bin/sh`
/// exits 127 under ASan, 11 under TSan), and the sanitizer's own malloc
/// replaces the one it would count: what those tests check cannot be seen.
let underSanitizer = dlsym(nil, "__asan_init") != nil || dlsym(nil, "__tsan_init") != nil

let allocationCountingNeedsPlainMalloc =
    "the LD_PRELOAD allocation counter cannot count under a sanitizer (it replaces malloc itself)"
